// The operator's commands: `pgwarden list`, `switchover`, `failover`, `history`, `edit-config`,
// `restart`, `reload`, `reinit`, `check-config`. Each takes the same config file as the agent
// (-c), reads the cluster from etcd, and asks a member's REST API to act (as patronictl does), so
// the agents stay the only writers of the cluster's keys.
#pragma once

namespace CLI {
class App;
}

namespace pgwarden::cli {

// Adds the subcommands to `app`. The exit status of a command that ran is stored for
// main() to return (CommandExitStatus()).
void RegisterCommands(CLI::App& app);
int CommandExitStatus();

}  // namespace pgwarden::cli
