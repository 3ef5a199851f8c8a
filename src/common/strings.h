// Small text helpers shared by the parsers (config files, pg_controldata output, conf files).
#pragma once

#include <string_view>

namespace pgwarden {

// `s` without leading and trailing white space (space, tab, CR, LF, VT, FF).
std::string_view TrimSpace(std::string_view s);

}  // namespace pgwarden
