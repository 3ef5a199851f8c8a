// pgwarden: one binary, one subcommand per role (agent, proxy, list, switchover, ...).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "agent/command.h"
#include "proxy/command.h"

#include "cli/commands.h"
#include "demo/command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "pgwarden: high availability for PostgreSQL.\n"
      "Keeps one primary elected through an etcd lease, fails over automatically,\n"
      "and routes clients by role.",
      "pgwarden"};
  app.set_version_flag("--version", std::string("pgwarden ") + PGWARDEN_VERSION);
  app.require_subcommand(0, 1);
  pgwarden::agent::RegisterCommand(app);
  pgwarden::proxy::RegisterCommand(app);
  app.footer("Run `pgwarden <command> --help` for the options of a command.");
  pgwarden::cli::RegisterCommands(app);
  pgwarden::demo::RegisterCommands(app);

  CLI11_PARSE(app, argc, argv);
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  return pgwarden::cli::CommandExitStatus();
}
