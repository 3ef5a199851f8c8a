// Registers the `agent` subcommand on pgwarden's command line.
#pragma once

namespace CLI {
class App;
}

namespace pgwarden::agent {

// Adds `pgwarden agent -c FILE`; when chosen, the subcommand runs the agent and exits the
// process with its status.
void RegisterCommand(CLI::App& app);

}  // namespace pgwarden::agent
