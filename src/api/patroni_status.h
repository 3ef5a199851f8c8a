// Rendering of the read endpoints' bodies (JSON and Prometheus text) from an ApiSnapshot, with
// Patroni's field names. Internal to the api module.
#pragma once

#include <string>

#include "api/patroni_api.h"

namespace pgwarden::api {

// GET /patroni (and every health endpoint's body).
std::string StatusJson(const ApiSnapshot& snapshot);
// GET /cluster; the snapshot must have a cluster view.
std::string ClusterJson(const ApiSnapshot& snapshot);
// GET /history.
std::string HistoryJson(const ClusterView& cluster);
// GET /metrics.
std::string MetricsText(const ApiSnapshot& snapshot);

}  // namespace pgwarden::api
