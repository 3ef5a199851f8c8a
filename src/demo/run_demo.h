// The two programs behind `pgwarden demo` and `pgwarden demo-app`.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "demo/demo_app.h"

namespace pgwarden::demo {

struct DemoOptions {
  int members = 3;
  std::vector<std::string> events = {"switchover", "crash", "freeze"};
  bool keep = false;
  std::string dir;   // empty: a new temporary directory
  std::string self;  // the pgwarden binary (/proc/self/exe resolved)
  std::chrono::milliseconds interval{300};
  AppMode mode = AppMode::kReconnect;
  std::chrono::milliseconds startup_timeout{90000};
  std::chrono::milliseconds event_timeout{90000};
};

// Set by SIGINT / SIGTERM (InstallStopHandlers); every wait of the demo polls it.
extern std::atomic<bool> g_stop_requested;
void InstallStopHandlers();

int RunDemo(const DemoOptions& options);
int RunDemoApp(const DemoAppOptions& options, const std::string& log_file);

}  // namespace pgwarden::demo
