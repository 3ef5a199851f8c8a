// Control endpoints: the checks of Patroni's do_POST_failover / is_failover_possible /
// parse_schedule / do_POST_restart, with Patroni's messages, done against the snapshot before
// anything reaches the agent.
#include "api/patroni_control.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pgwarden::api {

namespace {

using Json = nlohmann::json;

HttpResponse Reply(int status, std::string message) {
  return HttpResponse::Text(status, std::move(message));
}

ControlPlan Immediate(int status, std::string message) {
  ControlPlan plan;
  plan.immediate = Reply(status, std::move(message));
  return plan;
}

// The HTTP answer for an error of the agent. `conflict_status`: 412 for switchover/failover, 409
// elsewhere. `action` names the operation for "status unknown".
HttpResponse ErrorReply(const Error& error, int conflict_status, const std::string& action) {
  switch (error.code) {
    case ErrorCode::kConflict:
      return Reply(conflict_status, error.message);
    case ErrorCode::kInvalidArgument:
      return Reply(400, error.message);
    case ErrorCode::kNotFound:
      return Reply(404, error.message);
    case ErrorCode::kTimeout:
      return Reply(
          503, action + " status unknown" + (error.message.empty() ? "" : ": " + error.message));
    case ErrorCode::kCorrupt:
      return Reply(500, error.message);
    case ErrorCode::kUnavailable:
    case ErrorCode::kFailed:
    case ErrorCode::kCancelled:
    case ErrorCode::kCompacted:
      return Reply(503, error.message);
  }
  return Reply(503, error.message);
}

// The body as a JSON object. `optional`: an empty body (or `{}`) is allowed.
Result<Json> ReadObject(const HttpRequest& req, bool optional) {
  bool blank = std::all_of(req.body.begin(), req.body.end(),
                           [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
  if (blank) {
    if (optional) return Json::object();
    return Fail(ErrorCode::kInvalidArgument, "request body must be a non-empty JSON object");
  }
  Json body;
  try {
    body = Json::parse(req.body);
  } catch (const Json::exception& e) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string("request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "request body must be a JSON object");
  }
  if (body.empty() && !optional) {
    return Fail(ErrorCode::kInvalidArgument, "request body must be a non-empty JSON object");
  }
  return body;
}

// A string field; absent, null and "" are nullopt (Python's falsy), other types are an error.
Result<std::optional<std::string>> StringField(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return Fail(ErrorCode::kInvalidArgument, std::string("\"") + key + "\" must be a string");
  }
  std::string value = it->get<std::string>();
  if (value.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(value));
}

std::optional<bool> BoolValue(const Json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<int64_t>() != 0;
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "on" || s == "true" || s == "yes" || s == "1") return true;
    if (s == "off" || s == "false" || s == "no" || s == "0") return false;
  }
  return std::nullopt;
}

// parse_schedule(): the status and message of a bad schedule, or the time.
struct Schedule {
  std::optional<SystemTime> at;
  int status = 0;  // non-zero: rejected with `error`
  std::string error;
};

Schedule ParseSchedule(const Json& value, SystemTime now, const std::string& action) {
  Schedule out;
  auto parsed = value.is_string() ? ParseTimestamp(value.get<std::string>())
                                  : Result<SystemTime>(Fail(ErrorCode::kCorrupt, "not a string"));
  if (!parsed) {
    if (parsed.error().code == ErrorCode::kInvalidArgument) {
      out.status = 400;
      out.error = "Timezone information is mandatory for the scheduled " + action;
    } else {
      out.status = 422;
      out.error =
          "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. "
          "ISO 8601";
    }
    return out;
  }
  if (*parsed < now) {
    out.status = 422;
    out.error = "Cannot schedule " + action + " in the past";
    return out;
  }
  out.at = *parsed;
  return out;
}

const ClusterMember* FindMember(const ClusterView& c, const std::string& name) {
  for (const auto& m : c.members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

bool InSync(const ClusterView& c, const std::string& name) {
  return std::find(c.sync_standbys.begin(), c.sync_standbys.end(), name) != c.sync_standbys.end();
}

// is_failover_possible() on what the snapshot knows: names, sync set and tags. Whether the
// candidates are healthy and caught up is the agent's call (it probes them; kConflict -> 412).
std::optional<std::string> FailoverImpossible(const ClusterView& c,
                                              const std::optional<std::string>& leader,
                                              const std::optional<std::string>& candidate,
                                              const std::string& action) {
  if (leader && (!c.leader || *c.leader != *leader)) return "leader name does not match";
  const std::string no_good = action + " is not possible: no good candidates have been found";
  if (candidate) {
    if (action == "switchover" && c.synchronous_mode && !InSync(c, *candidate)) {
      return "candidate name does not match with sync_standby";
    }
    const ClusterMember* m = FindMember(c, *candidate);
    if (m == nullptr) return "candidate does not exists";
    if (c.leader && *c.leader == *candidate) {
      return action + " is not possible: " + *candidate + " is already the leader";
    }
    if (m->tags.nofailover) return no_good;
    return std::nullopt;
  }
  std::vector<const ClusterMember*> eligible;
  if (c.synchronous_mode) {
    for (const auto& m : c.members) {
      if (InSync(c, m.name) && (!c.leader || m.name != *c.leader)) eligible.push_back(&m);
    }
    if (eligible.empty()) return action + " is not possible: can not find sync_standby";
  } else {
    for (const auto& m : c.members) {
      if ((!c.leader || m.name != *c.leader) && !m.api_url.empty()) eligible.push_back(&m);
    }
    if (eligible.empty()) {
      return action + " is not possible: cluster does not have members except leader";
    }
  }
  bool any = std::any_of(eligible.begin(), eligible.end(),
                         [](const ClusterMember* m) { return !m->tags.nofailover; });
  if (!any) return no_good;
  return std::nullopt;
}

ControlPlan PlanSwitchover(const HttpRequest& req, const ApiSnapshot* s, SystemTime now,
                           std::string action) {
  auto body = ReadObject(req, false);
  if (!body) return Immediate(400, body.error().message);
  auto leader = StringField(*body, "leader");
  if (!leader) return Immediate(400, leader.error().message);
  auto candidate = StringField(*body, "candidate");
  if (!candidate) return Immediate(400, candidate.error().message);
  if (!*candidate) {
    candidate = StringField(*body, "member");  // Patroni's legacy name
    if (!candidate) return Immediate(400, candidate.error().message);
  }
  const Json* scheduled = nullptr;
  if (auto it = body->find("scheduled_at"); it != body->end() && !it->is_null()) {
    scheduled = &*it;
  }
  if (s == nullptr) return Immediate(503, "no status yet: the agent is starting");
  const bool paused = s->pause;

  if (action == "failover" && !*candidate) {
    return Immediate(400, "Failover could be performed only to a specific candidate");
  }
  if (action == "switchover" && !*leader) {
    return Immediate(400, "Switchover could be performed only from a specific leader");
  }
  Schedule schedule;
  if (scheduled != nullptr) {
    if (action == "failover") return Immediate(400, "Failover can't be scheduled");
    if (paused) return Immediate(400, "Can't schedule switchover in the paused state");
    schedule = ParseSchedule(*scheduled, now, action);
    if (schedule.status != 0) return Immediate(schedule.status, schedule.error);
  }
  if (paused && !*candidate) {
    return Immediate(400, "Switchover is possible only to a specific candidate in a paused state");
  }
  if (action == "failover" && *leader) action = "switchover";  // as Patroni: leader given
  if (*leader && *candidate && **leader == **candidate) {
    return Immediate(400, "Switchover target and source are the same");
  }
  if (!s->cluster) return Immediate(503, "DCS is not accessible: cannot check the request");
  if (auto why = FailoverImpossible(*s->cluster, *leader, *candidate, action)) {
    return Immediate(412, *why);
  }

  ControlPlan plan;
  if (action == "switchover") {
    SwitchoverRequest request;
    request.leader = **leader;
    request.candidate = *candidate;
    request.scheduled_at = schedule.at;
    if (schedule.at) request.scheduled_at_text = scheduled->get<std::string>();
    plan.run = [request](ControlPlane& cp) {
      auto result = cp.RequestSwitchover(request);
      if (!result) return ErrorReply(result.error(), 412, "Switchover");
      if (request.scheduled_at) {
        return Reply(202, result->empty() ? "Switchover scheduled" : *result);
      }
      return Reply(200, result->empty() ? "Switchover done" : *result);
    };
  } else {
    std::string target = **candidate;
    plan.run = [target](ControlPlane& cp) {
      auto result = cp.RequestFailover(target);
      if (!result) return ErrorReply(result.error(), 412, "Failover");
      return Reply(200,
                   result->empty() ? "Successfully failed over to \"" + target + "\"" : *result);
    };
  }
  return plan;
}

bool ValidPostgresVersion(const std::string& v) {
  if (v.empty() || v.front() == '.' || v.back() == '.') return false;
  int dots = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '.') {
      if (v[i - 1] == '.') return false;
      ++dots;
    } else if (v[i] < '0' || v[i] > '9') {
      return false;
    }
  }
  return dots <= 2;
}

// A positive number of seconds: 30, "30", "30s", "5min", "1h".
std::optional<std::chrono::seconds> TimeoutValue(const Json& v) {
  int64_t n = 0;
  std::string unit;
  if (v.is_number_integer()) {
    n = v.get<int64_t>();
  } else if (v.is_string()) {
    std::string s = v.get<std::string>();
    size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n > 100'000'000) return std::nullopt;
      n = n * 10 + (s[i] - '0');
      ++i;
    }
    if (i == 0) return std::nullopt;
    unit = s.substr(i);
  } else {
    return std::nullopt;
  }
  int64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "min") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else {
    return std::nullopt;
  }
  if (n <= 0 || n > 100'000'000) return std::nullopt;
  return std::chrono::seconds(n * scale);
}

ControlPlan PlanRestart(const HttpRequest& req, const ApiSnapshot* s, SystemTime now) {
  auto body = ReadObject(req, true);
  if (!body) return Immediate(400, body.error().message);
  if (s == nullptr) return Immediate(503, "no status yet: the agent is starting");
  if (s->pause && body->contains("schedule")) {
    return Immediate(500, "Can't schedule restart in the paused state");
  }
  RestartRequest request;
  for (const auto& [key, value] : body->items()) {
    if (key == "schedule") {
      Schedule schedule = ParseSchedule(value, now, "restart");
      if (schedule.status != 0) return Immediate(schedule.status, schedule.error);
      request.schedule = schedule.at;
      request.schedule_text = value.get<std::string>();
    } else if (key == "role") {
      std::string role = value.is_string() ? value.get<std::string>() : "";
      if (role == "primary") {
        request.role = PgRole::kPrimary;
      } else if (role == "standby_leader") {
        request.role = PgRole::kStandbyLeader;
      } else if (role == "replica") {
        request.role = PgRole::kReplica;
      } else {
        return Immediate(400,
                         "PostgreSQL role should be either primary, standby_leader, or replica");
      }
    } else if (key == "postgres_version") {
      std::string v = value.is_string() ? value.get<std::string>() : value.dump();
      if (!ValidPostgresVersion(v)) {
        return Immediate(400, "postgres_version \"" + v + "\" is not a valid PostgreSQL version");
      }
      request.postgres_version = v;
    } else if (key == "timeout") {
      auto timeout = TimeoutValue(value);
      if (!timeout) return Immediate(400, "Timeout should be a positive number of seconds");
      request.timeout = *timeout;
    } else if (key == "restart_pending") {
      auto flag = BoolValue(value);
      if (!flag) return Immediate(400, "restart_pending should be a boolean");
      request.restart_pending = *flag;
    } else {
      return Immediate(400, "Unknown filter for the scheduled restart: " + key);
    }
  }
  ControlPlan plan;
  plan.run = [request](ControlPlane& cp) {
    auto result = cp.Restart(request);
    if (!result) {
      if (result.error().code == ErrorCode::kConflict && request.schedule) {
        return Reply(409, result.error().message.empty() ? "Another restart is already scheduled"
                                                         : result.error().message);
      }
      return ErrorReply(result.error(), 409, "Restart");
    }
    if (request.schedule) return Reply(202, result->empty() ? "Restart scheduled" : *result);
    return Reply(200, result->empty() ? "restarted successfully" : *result);
  };
  return plan;
}

ControlPlan PlanConfig(const HttpRequest& req, bool patch) {
  auto body = ReadObject(req, false);
  if (!body) return Immediate(400, body.error().message);
  std::string text = body->dump();
  ControlPlan plan;
  plan.run = [text, patch](ControlPlane& cp) {
    auto result = patch ? cp.PatchConfig(text) : cp.ReplaceConfig(text);
    if (!result) {
      const Error& e = result.error();
      if (patch && e.code == ErrorCode::kNotFound) return Reply(503, e.message);
      if (!patch && (e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kFailed)) {
        return Reply(502, e.message);
      }
      return ErrorReply(e, 409, "Config update");
    }
    return HttpResponse::Json(200, *result);
  };
  return plan;
}

ControlPlan PlanReinitialize(const HttpRequest& req, const ApiSnapshot* s) {
  auto body = ReadObject(req, true);
  if (!body) return Immediate(400, body.error().message);
  bool force = false;
  bool from_leader = false;
  if (auto it = body->find("force"); it != body->end()) force = BoolValue(*it).value_or(false);
  if (auto it = body->find("from_leader"); it != body->end()) {
    from_leader = BoolValue(*it).value_or(false);
  }
  if (s == nullptr) return Immediate(503, "no status yet: the agent is starting");
  if (s->self.holds_leader_lock) return Immediate(503, "I am the leader, can not reinitialize");
  ControlPlan plan;
  plan.run = [force, from_leader](ControlPlane& cp) {
    auto result = cp.Reinitialize(force, from_leader);
    if (!result) return Reply(503, result.error().message);
    return Reply(200, "reinitialize started");
  };
  return plan;
}

}  // namespace

ControlPlan PlanControl(const HttpRequest& req, const ApiSnapshot* s, SystemTime now) {
  const std::string& m = req.method;
  const std::string& p = req.path;
  if (m == "POST" && p == "/switchover") return PlanSwitchover(req, s, now, "switchover");
  if (m == "POST" && p == "/failover") return PlanSwitchover(req, s, now, "failover");
  if (m == "POST" && p == "/restart") return PlanRestart(req, s, now);
  if (m == "POST" && p == "/reinitialize") return PlanReinitialize(req, s);
  if (m == "POST" && p == "/reload") {
    ControlPlan plan;
    plan.run = [](ControlPlane& cp) {
      auto result = cp.Reload();
      if (!result) return ErrorReply(result.error(), 409, "Reload");
      return Reply(202, "reload scheduled");
    };
    return plan;
  }
  if ((m == "PATCH" || m == "PUT") && p == "/config") return PlanConfig(req, m == "PATCH");
  if (m == "DELETE" && p == "/switchover") {
    ControlPlan plan;
    plan.run = [](ControlPlane& cp) {
      auto result = cp.CancelScheduledSwitchover();
      if (!result) {
        if (result.error().code == ErrorCode::kNotFound) {
          return Reply(404, "no switchover is scheduled");
        }
        return ErrorReply(result.error(), 409, "Switchover");
      }
      return Reply(200, "scheduled switchover deleted");
    };
    return plan;
  }
  if (m == "DELETE" && p == "/restart") {
    ControlPlan plan;
    plan.run = [](ControlPlane& cp) {
      auto result = cp.CancelScheduledRestart();
      if (!result) {
        if (result.error().code == ErrorCode::kNotFound) {
          return Reply(404, "no restarts are scheduled");
        }
        return ErrorReply(result.error(), 409, "Restart");
      }
      return Reply(200, "scheduled restart deleted");
    };
    return plan;
  }
  return Immediate(404, "no such endpoint: " + m + " " + p);
}

}  // namespace pgwarden::api
