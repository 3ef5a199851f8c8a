// Validation of the control endpoints (POST /switchover, /failover, /restart, /reload,
// /reinitialize; PATCH/PUT /config; DELETE /switchover, /restart) against a snapshot, and the
// mapping of the agent's answers to HTTP. Internal to the api module; pure: no I/O, no clock.
#pragma once

#include <functional>
#include <optional>

#include "api/http_server.h"
#include "api/patroni_api.h"

namespace pgwarden::api {

// Either an immediate answer (a bad request: nothing is handed to the agent) or the call to make
// on the agent's ControlPlane, which turns its result into the answer.
struct ControlPlan {
  std::optional<HttpResponse> immediate;
  std::function<HttpResponse(ControlPlane&)> run;
};

// `snapshot` may be null (the agent has not published one yet). `now` judges scheduled times.
ControlPlan PlanControl(const HttpRequest& request, const ApiSnapshot* snapshot, SystemTime now);

}  // namespace pgwarden::api
