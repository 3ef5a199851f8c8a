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

}  // namespace
}  // namespace pgwarden::config
