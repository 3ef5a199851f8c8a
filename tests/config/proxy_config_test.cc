#include "config/proxy_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgwarden::config {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kSource = PGWARDEN_SOURCE_DIR;

std::vector<std::string> ProxyErrors(std::string_view yaml) {
  Result<LoadedProxyConfig> r = LoadProxyConfigString(yaml, "proxy.yml");
  EXPECT_FALSE(r.has_value());
  if (r) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  std::vector<std::string> lines;
  std::string line;
  for (char ch : r.error().message + "\n") {
    if (ch == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line += ch;
    }
  }
  return lines;
}

TEST(ProxyConfig, ExampleLoads) {
  Result<LoadedProxyConfig> r = LoadProxyConfigFile(kSource + "/docs/examples/proxy.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_THAT(r->warnings, ::testing::IsEmpty());
  const ProxyConfig& c = r->config;
  EXPECT_EQ(c.KeyPrefix(), "/service/demo/");
  EXPECT_EQ(c.etcd.hosts.size(), 3u);
  EXPECT_EQ(c.listen, "127.0.0.1");
  EXPECT_EQ(c.primary_port, 6432);
  EXPECT_EQ(c.replica_port, 6433);
  EXPECT_EQ(c.sync_port, std::nullopt);
  EXPECT_EQ(c.status_port, 6480);
  EXPECT_EQ(c.replica, (ProxyRoutePolicy{16u << 20, true}));
  EXPECT_EQ(c.sync, ProxyRoutePolicy{});
  EXPECT_EQ(c.hold_timeout, milliseconds(10'000));
  EXPECT_EQ(c.connect_timeout, milliseconds(2'000));
  EXPECT_EQ(c.stall_timeout, std::nullopt);  // the proxy's default applies
  EXPECT_EQ(c.retry_backoff_min, milliseconds(100));
  EXPECT_EQ(c.retry_backoff_max, milliseconds(250));
  EXPECT_EQ(c.max_connect_attempts, 100);
  EXPECT_EQ(c.max_held, 10'000);
}

TEST(ProxyConfig, NodeFileSectionsAreSkipped) {
  Result<LoadedProxyConfig> r = LoadProxyConfigFile(kSource + "/docs/examples/node1.yml");
  ASSERT_FALSE(r.has_value());  // no client port in a node file
  EXPECT_THAT(r.error().message, HasSubstr("proxy.primary_port: required key is missing"));
  EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("unknown key")));
}

TEST(ProxyConfig, EveryProblemAtOnce) {
  EXPECT_THAT(ProxyErrors("scope: demo\n"                       // 1
                          "etcd3: {hosts: [127.0.0.1:2379]}\n"  // 2
                          "proxy:\n"                            // 3
                          "  listen: localhost\n"               // 4
                          "  primary_port: 6432\n"              // 5
                          "  replica_port: 6432\n"              // 6
                          "  status_port: 70000\n"              // 7
                          "  replica: {max_lag: lots}\n"        // 8
                          "  hold_timout: 5s\n"),               // 9
              ElementsAre("proxy.yml:4:3: proxy.listen: expected an IP address (`0.0.0.0`, "
                          "`127.0.0.1`, `::`), got `localhost`",
                          "proxy.yml:6:3: proxy.replica_port: port 6432 is already "
                          "proxy.primary_port",
                          "proxy.yml:7:16: proxy.status_port: must be between 1 and 65535, got "
                          "70000",
                          HasSubstr("proxy.yml:8:22: proxy.replica.max_lag: expected a size in "
                                    "bytes"),
                          "proxy.yml:9:3: proxy.hold_timout: unknown key `proxy.hold_timout` (did "
                          "you mean `hold_timeout`?)"));
  EXPECT_THAT(ProxyErrors("etcd3: {}\nproxy: {replica_port: 6433}\n"),
              ElementsAre("proxy.yml:1:1: scope: required key is missing: the cluster's name",
                          "proxy.yml:1:1: etcd3.hosts: required key is missing: at least one "
                          "etcd host (etcd3.hosts or etcd3.host)"));
}

const char kProxyHead[] =
    "scope: demo\n"                       // 1
    "etcd3: {hosts: [127.0.0.1:2379]}\n"  // 2
    "proxy:\n"                            // 3
    "  primary_port: 6432\n";             // 4

TEST(ProxyConfig, HoldQueueRetryKeys) {
  Result<LoadedProxyConfig> r = LoadProxyConfigString(std::string(kProxyHead) +
                                                          "  retry_backoff_min: 50ms\n"
                                                          "  retry_backoff_max: 2s\n"
                                                          "  max_connect_attempts: 20\n"
                                                          "  max_held: 500\n",
                                                      "proxy.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->config.retry_backoff_min, milliseconds(50));
  EXPECT_EQ(r->config.retry_backoff_max, milliseconds(2'000));
  EXPECT_EQ(r->config.max_connect_attempts, 20);
  EXPECT_EQ(r->config.max_held, 500);

  // Left out: the proxy's defaults.
  Result<LoadedProxyConfig> d = LoadProxyConfigString(kProxyHead, "proxy.yml");
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(d->config.retry_backoff_min, std::nullopt);
  EXPECT_EQ(d->config.retry_backoff_max, std::nullopt);
  EXPECT_EQ(d->config.max_connect_attempts, std::nullopt);
  EXPECT_EQ(d->config.max_held, std::nullopt);

  // Equal bounds are fine (a constant pause).
  EXPECT_TRUE(LoadProxyConfigString(std::string(kProxyHead) + "  retry_backoff_min: 1s\n"
                                                              "  retry_backoff_max: 1s\n",
                                    "proxy.yml")
                  .has_value());
}

TEST(ProxyConfig, HoldQueueRetryKeysWrongType) {
  EXPECT_THAT(ProxyErrors(std::string(kProxyHead) + "  retry_backoff_min: [1s]\n"     // 5
                                                    "  retry_backoff_max: soon\n"     // 6
                                                    "  max_connect_attempts: many\n"  // 7
                                                    "  max_held: {n: 1}\n"),          // 8
              ElementsAre(HasSubstr("proxy.yml:5:22: proxy.retry_backoff_min: expected a duration"),
                          HasSubstr("proxy.yml:6:22: proxy.retry_backoff_max: "),
                          HasSubstr("proxy.yml:7:25: proxy.max_connect_attempts: "),
                          HasSubstr("proxy.yml:8:13: proxy.max_held: ")));
}

TEST(ProxyConfig, HoldQueueRetryKeysOutOfRange) {
  EXPECT_THAT(
      ProxyErrors(std::string(kProxyHead) + "  retry_backoff_min: 0s\n"    // 5
                                            "  retry_backoff_max: -1s\n"   // 6
                                            "  max_connect_attempts: 0\n"  // 7
                                            "  max_held: -5\n"),           // 8
      ElementsAre("proxy.yml:5:3: proxy.retry_backoff_min: must be greater than 0",
                  "proxy.yml:6:22: proxy.retry_backoff_max: must not be negative, got `-1s`",
                  "proxy.yml:7:25: proxy.max_connect_attempts: must be between 1 and "
                  "1000000, got 0",
                  "proxy.yml:8:13: proxy.max_held: must be between 1 and 10000000, got "
                  "-5"));
  EXPECT_THAT(ProxyErrors(std::string(kProxyHead) + "  retry_backoff_max: 0ms\n"),
              ElementsAre("proxy.yml:5:3: proxy.retry_backoff_max: must be greater than 0"));
}

TEST(ProxyConfig, RetryBackoffMaxBelowMin) {
  EXPECT_THAT(ProxyErrors(std::string(kProxyHead) + "  retry_backoff_min: 500ms\n"    // 5
                                                    "  retry_backoff_max: 200ms\n"),  // 6
              ElementsAre("proxy.yml:6:3: proxy.retry_backoff_max: must be at least "
                          "proxy.retry_backoff_min (500ms), got 200ms"));
}

TEST(ProxyConfig, Threads) {
  Result<LoadedProxyConfig> r =
      LoadProxyConfigString(std::string(kProxyHead) + "  threads: 4\n", "proxy.yml");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->config.threads, 4);
  EXPECT_EQ(LoadProxyConfigString(kProxyHead, "proxy.yml")->config.threads, std::nullopt);
  EXPECT_THAT(ProxyErrors(std::string(kProxyHead) + "  threads: 0\n"),  // 5
              ElementsAre("proxy.yml:5:12: proxy.threads: must be between 1 and 64, got 0"));
  EXPECT_THAT(ProxyErrors(std::string(kProxyHead) + "  threads: many\n"),
              ElementsAre(HasSubstr("proxy.yml:5:12: proxy.threads: ")));
}

}  // namespace
}  // namespace pgwarden::config
