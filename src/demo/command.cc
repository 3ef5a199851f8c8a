#include "demo/command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>

#include "config/units.h"
#include "demo/demo_cluster.h"
#include "demo/run_demo.h"

namespace pgwarden::demo {
namespace {

std::string SelfPath() {
  char buf[4096];
  ssize_t len = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (len <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<size_t>(len));
}

// Parses a duration option ("300ms", "2s", "1min"); exits with status 2 on bad input.
std::chrono::milliseconds DurationOption(const std::string& option, const std::string& text) {
  auto d = config::ParseDuration(text);
  if (!d) {
    std::cerr << option << ": " << d.error().message << "\n";
    std::exit(2);
  }
  return *d;
}

AppMode ModeOption(const std::string& text) {
  return text == "persistent" ? AppMode::kPersistent : AppMode::kReconnect;
}

}  // namespace

void RegisterCommands(CLI::App& app) {
  struct AppArgs {
    std::string dsn, interval = "300ms", mode = "reconnect", duration = "0", log_file;
  };
  auto a = std::make_shared<AppArgs>();
  auto* demo_app = app.add_subcommand(
      "demo-app", "The demo application: logs an event every interval, prints each outcome");
  demo_app->add_option("--dsn", a->dsn, "libpq conninfo of the database")->required();
  demo_app->add_option("--interval", a->interval, "time between attempts (default 300ms)");
  demo_app
      ->add_option("--mode", a->mode,
                   "reconnect: a new connection per event (default); persistent: one "
                   "connection, reopened after an error")
      ->check(CLI::IsMember({"reconnect", "persistent"}));
  demo_app->add_option("--duration", a->duration, "stop after this long (default 0: Ctrl+C)");
  demo_app->add_option("--log-file", a->log_file, "also append every line to this file");
  demo_app->callback([a] {
    DemoAppOptions o;
    o.dsn = a->dsn;
    o.interval = DurationOption("--interval", a->interval);
    o.duration = DurationOption("--duration", a->duration);
    o.mode = ModeOption(a->mode);
    InstallStopHandlers();
    std::exit(RunDemoApp(o, a->log_file));
  });

  struct DemoArgs {
    int members = 3;
    std::string events = "switchover,crash,freeze";
    bool keep = false, stop = false;
    std::string dir, interval = "300ms", mode = "reconnect";
  };
  auto d = std::make_shared<DemoArgs>();
  auto* demo = app.add_subcommand(
      "demo",
      "A whole cluster on loopback with a live application through a switchover, a crash and a "
      "freeze");
  demo->add_option("--members", d->members, "number of members (default 3)")
      ->check(CLI::Range(2, 9));
  demo->add_option("--events", d->events,
                   "comma-separated events, in order: switchover, crash, freeze (default all "
                   "three; \"\" for none)");
  demo->add_flag("--keep", d->keep, "leave the cluster running at the end and print how to use it");
  demo->add_option("--dir", d->dir, "directory for everything (default: a new one in /tmp)");
  demo->add_flag("--stop", d->stop, "stop the cluster that `demo --keep --dir DIR` left running");
  demo->add_option("--interval", d->interval, "the application's interval (default 300ms)");
  demo->add_option("--mode", d->mode, "the application's mode: reconnect or persistent")
      ->check(CLI::IsMember({"reconnect", "persistent"}));
  demo->callback([d] {
    if (d->stop) {
      if (d->dir.empty()) {
        std::cerr << "--stop needs --dir (the directory the kept demo printed)\n";
        std::exit(2);
      }
      std::string report;
      auto r = DemoCluster::StopKept(d->dir, &report);
      std::cout << report;
      if (!r) {
        std::cerr << r.error().message << "\n";
        std::exit(1);
      }
      std::exit(0);
    }
    DemoOptions o;
    o.members = d->members;
    o.keep = d->keep;
    o.dir = d->dir;
    o.self = SelfPath();
    o.interval = DurationOption("--interval", d->interval);
    o.mode = ModeOption(d->mode);
    o.events.clear();
    std::stringstream ss(d->events);
    for (std::string e; std::getline(ss, e, ',');) {
      if (e.empty()) continue;
      if (e != "switchover" && e != "crash" && e != "freeze") {
        std::cerr << "--events: unknown event '" << e << "' (switchover, crash, freeze)\n";
        std::exit(2);
      }
      o.events.push_back(e);
    }
    InstallStopHandlers();
    std::exit(RunDemo(o));
  });
}

}  // namespace pgwarden::demo
