// Free TCP ports on loopback for servers that tests start.
#pragma once

#include <cstdint>

namespace pgwarden::testing {

// A port on 127.0.0.1 that nothing listens on now. Ports are handed out from a per-process
// range (randomised per process, never twice in one process), so parallel tests in
// different processes rarely collide, and each candidate is checked by binding it.
uint16_t FreeLoopbackPort();

}  // namespace pgwarden::testing
