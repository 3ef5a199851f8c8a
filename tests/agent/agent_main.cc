// A pgwarden executable with only the `agent` subcommand, for the integration test: it runs the
// same code as `pgwarden agent -c FILE` (agent::RegisterCommand) but does not depend on the
// other subcommands' modules, so a teammate's half-written module cannot stop this test.
#include <CLI/CLI.hpp>

#include "agent/command.h"

int main(int argc, char** argv) {
  CLI::App app{"pgwarden (agent only, for tests)", "pgwarden"};
  app.require_subcommand(1, 1);
  pgwarden::agent::RegisterCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
