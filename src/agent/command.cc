#include "agent/command.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>

#include "agent/agent.h"
#include "agent/watchdog.h"

namespace pgwarden::agent {

void RegisterCommand(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("agent", "Run the HA agent beside this node's PostgreSQL");
  auto path = std::make_shared<std::string>();
  sub->add_option("-c,--config", *path, "Node configuration file (YAML)")->required();
  sub->callback([path] { std::exit(RunAgent(*path)); });
  RegisterWatchdogCommand(app);  // hidden `pgwarden watchdog`, started by the agent
}

}  // namespace pgwarden::agent
