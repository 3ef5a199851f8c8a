// The public config headers stay light: other modules include config.h, and yaml-cpp /
// nlohmann-json must not come with it (they are private to src/config/*.cc).
#include "config/config.h"
#include "config/dynamic_config.h"
#include "config/ha_timing.h"
#include "config/proxy_config.h"
#include "config/units.h"

#if defined(NLOHMANN_JSON_VERSION_MAJOR) || defined(INCLUDE_NLOHMANN_JSON_HPP_)
#error "config headers must not include nlohmann/json.hpp"
#endif
#if defined(YAML_H_62B23520_7C8E_11DE_8A39_0800200C9A66) || defined(YAML_CPP_API)
#error "config headers must not include yaml-cpp"
#endif

#include <gtest/gtest.h>

namespace pgwarden::config {
namespace {

TEST(ConfigHeaders, PlainStructsAreCopyableValues) {
  Config a;
  a.scope = "demo";
  Config b = a;
  EXPECT_EQ(b.scope, "demo");
  EXPECT_EQ(b.bootstrap.dcs, DynamicConfig{});
}

}  // namespace
}  // namespace pgwarden::config
