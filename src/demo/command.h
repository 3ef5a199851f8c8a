// Registers `pgwarden demo` (a whole cluster on loopback, a live application, a switchover and a
// host crash, then a summary) and `pgwarden demo-app` (the application alone, against any
// PostgreSQL).
#pragma once

namespace CLI {
class App;
}

namespace pgwarden::demo {

// Adds the subcommands; when one is chosen it runs and exits the process with its status.
void RegisterCommands(CLI::App& app);

}  // namespace pgwarden::demo
