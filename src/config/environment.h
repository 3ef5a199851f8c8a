// Internal to the config module: Patroni's PATRONI_* environment variables applied over the
// parsed file (the same keys Patroni reads: PATRONI_SCOPE, PATRONI_POSTGRESQL_DATA_DIR, ...;
// docs/configuration.md lists them).
#pragma once

#include "config/config.h"
#include "config/reader.h"
#include "config/tree.h"

namespace pgwarden::config::internal {

// Sets the keys named by the variables in `env` in the tree (creating sections as needed; a
// null root becomes a map) and records where each value came from, so that messages say
// "(from $PATRONI_X)". True when any variable applied.
bool ApplyEnvironment(const Environment& env, Node* root, Diagnostics* diag);

}  // namespace pgwarden::config::internal
