#include "proxy/status.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pgwarden::proxy {

void MergeInto(ProxyStatus& total, const ProxyStatus& part) {
  ProxyCounters& t = total.counters;
  const ProxyCounters& p = part.counters;
  for (size_t i = 0; i < kRoleCount; ++i) {
    t.accepted[i] += p.accepted[i];
    t.forwarded[i] += p.forwarded[i];
    t.refused[i] += p.refused[i];
  }
  t.held += p.held;
  t.hold_released += p.hold_released;
  t.hold_timeouts += p.hold_timeouts;
  t.reheld += p.reheld;
  t.hold_full += p.hold_full;
  t.held_gone += p.held_gone;
  t.retries_exhausted += p.retries_exhausted;
  t.closed_by_topology += p.closed_by_topology;
  t.upstream_connect_failures += p.upstream_connect_failures;
  t.upstream_connect_timeouts += p.upstream_connect_timeouts;
  t.idle_timeouts += p.idle_timeouts;
  t.accept_errors += p.accept_errors;
  t.bytes_client_to_upstream += p.bytes_client_to_upstream;
  t.bytes_upstream_to_client += p.bytes_upstream_to_client;
  t.sessions_closed += p.sessions_closed;
  total.active_sessions += part.active_sessions;
  total.held_now += part.held_now;
  for (const MemberStatus& m : part.members) {
    auto it = std::find_if(total.members.begin(), total.members.end(),
                           [&](const MemberStatus& x) { return x.name == m.name; });
    if (it == total.members.end()) {
      total.members.push_back(m);
    } else {
      it->sessions += m.sessions;
      it->unreachable = it->unreachable || m.unreachable;
    }
  }
}

std::string RenderStatusJson(const ProxyStatus& s) {
  nlohmann::ordered_json j;
  j["generation"] = s.generation;
  j["dcs_fresh"] = s.dcs_fresh;
  j["primary_usable"] = s.primary_usable;
  j["primary"] = s.primary ? nlohmann::ordered_json(*s.primary) : nlohmann::ordered_json();
  nlohmann::ordered_json routes = nlohmann::ordered_json::object();
  for (const PortStatus& p : s.ports) {
    routes[std::string(ToString(p.role))] = {{"port", p.port}, {"candidates", p.candidates}};
  }
  j["routes"] = routes;
  nlohmann::ordered_json members = nlohmann::ordered_json::array();
  for (const MemberStatus& m : s.members) {
    members.push_back({{"name", m.name},
                       {"endpoint", m.endpoint},
                       {"role", m.role},
                       {"lag_bytes", m.lag_bytes},
                       {"noloadbalance", m.noloadbalance},
                       {"sessions", m.sessions},
                       {"unreachable", m.unreachable}});
  }
  j["members"] = members;
  j["active_sessions"] = s.active_sessions;
  j["held"] = s.held_now;
  const ProxyCounters& c = s.counters;
  nlohmann::ordered_json counters;
  for (Role r : kAllRoles) {
    const size_t i = RoleIndex(r);
    counters["accepted"][std::string(ToString(r))] = c.accepted[i];
    counters["forwarded"][std::string(ToString(r))] = c.forwarded[i];
    counters["refused"][std::string(ToString(r))] = c.refused[i];
  }
  counters["held"] = c.held;
  counters["hold_released"] = c.hold_released;
  counters["hold_timeouts"] = c.hold_timeouts;
  counters["reheld"] = c.reheld;
  counters["hold_full"] = c.hold_full;
  counters["held_gone"] = c.held_gone;
  counters["retries_exhausted"] = c.retries_exhausted;
  counters["closed_by_topology"] = c.closed_by_topology;
  counters["upstream_connect_failures"] = c.upstream_connect_failures;
  counters["upstream_connect_timeouts"] = c.upstream_connect_timeouts;
  counters["idle_timeouts"] = c.idle_timeouts;
  counters["accept_errors"] = c.accept_errors;
  counters["bytes_client_to_upstream"] = c.bytes_client_to_upstream;
  counters["bytes_upstream_to_client"] = c.bytes_upstream_to_client;
  counters["sessions_closed"] = c.sessions_closed;
  j["counters"] = counters;
  return j.dump(2) + "\n";
}

namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string LabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

class MetricWriter {
 public:
  void Header(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(std::string_view name, std::string_view labels, uint64_t value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }
  void Single(std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    Header(name, type, help);
    Sample(name, "", value);
  }
  void PerRole(std::string_view name, std::string_view help,
               const std::array<uint64_t, kRoleCount>& values) {
    Header(name, "counter", help);
    for (Role r : kAllRoles) {
      Sample(name, "role=\"" + std::string(ToString(r)) + "\"", values[RoleIndex(r)]);
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string RenderPrometheus(const ProxyStatus& s) {
  const ProxyCounters& c = s.counters;
  MetricWriter w;
  w.PerRole("pgwarden_proxy_accepted_total", "Client connections accepted, per port.", c.accepted);
  w.PerRole("pgwarden_proxy_forwarded_total", "Client sessions connected to a backend, per port.",
            c.forwarded);
  w.PerRole("pgwarden_proxy_refused_total",
            "Client connections closed at once because no backend had the role.", c.refused);
  w.Single("pgwarden_proxy_held_total", "counter",
           "Clients put on hold: no usable primary, or every connect of their port failing.",
           c.held);
  w.Single("pgwarden_proxy_hold_released_total", "counter",
           "Times a held client was let go to try a member.", c.hold_released);
  w.Single("pgwarden_proxy_hold_timeouts_total", "counter",
           "Held clients closed after hold_timeout.", c.hold_timeouts);
  w.Single("pgwarden_proxy_reheld_total", "counter",
           "Clients put back on hold after every candidate's connect failed.", c.reheld);
  w.Single("pgwarden_proxy_hold_full_total", "counter",
           "Clients closed at once because the hold queue was full.", c.hold_full);
  w.Single("pgwarden_proxy_held_gone_total", "counter",
           "Held clients that disconnected while waiting.", c.held_gone);
  w.Single("pgwarden_proxy_retries_exhausted_total", "counter",
           "Clients closed after max_connect_attempts failed connects.", c.retries_exhausted);
  w.Single("pgwarden_proxy_closed_by_topology_total", "counter",
           "Sessions closed because their backend lost its role.", c.closed_by_topology);
  w.Single("pgwarden_proxy_upstream_connect_failures_total", "counter",
           "Backend connect attempts that failed or timed out.", c.upstream_connect_failures);
  w.Single("pgwarden_proxy_upstream_connect_timeouts_total", "counter",
           "Backend connect attempts that timed out.", c.upstream_connect_timeouts);
  w.Single("pgwarden_proxy_idle_timeouts_total", "counter",
           "Sessions closed by the idle or half-close timeout.", c.idle_timeouts);
  w.Single("pgwarden_proxy_accept_errors_total", "counter",
           "accept() failures (descriptor exhaustion and the like).", c.accept_errors);
  w.Header("pgwarden_proxy_bytes_total", "counter", "Bytes forwarded, per direction.");
  w.Sample("pgwarden_proxy_bytes_total", "direction=\"client_to_backend\"",
           c.bytes_client_to_upstream);
  w.Sample("pgwarden_proxy_bytes_total", "direction=\"backend_to_client\"",
           c.bytes_upstream_to_client);
  w.Single("pgwarden_proxy_sessions_closed_total", "counter", "Client sessions ended.",
           c.sessions_closed);
  w.Single("pgwarden_proxy_active_sessions", "gauge",
           "Sessions connecting to or forwarding to a backend.", s.active_sessions);
  w.Single("pgwarden_proxy_held_sessions", "gauge", "Primary-port clients on hold now.",
           s.held_now);
  w.Single("pgwarden_proxy_primary_usable", "gauge",
           "1 while a primary is known and the etcd view is fresh.", s.primary_usable ? 1 : 0);
  w.Single("pgwarden_proxy_dcs_fresh", "gauge", "1 while the proxy heard from etcd within ttl.",
           s.dcs_fresh ? 1 : 0);
  w.Single("pgwarden_proxy_topology_generation", "gauge",
           "Generation of the routing snapshot in use.", s.generation);
  w.Header("pgwarden_proxy_member_sessions", "gauge", "Live sessions per backend member.");
  for (const MemberStatus& m : s.members) {
    w.Sample("pgwarden_proxy_member_sessions",
             "member=\"" + LabelValue(m.name) + "\",role=\"" + LabelValue(m.role) + "\"",
             m.sessions);
  }
  w.Header("pgwarden_proxy_member_unreachable", "gauge",
           "1 while the member is marked unreachable after a failed connect.");
  for (const MemberStatus& m : s.members) {
    w.Sample("pgwarden_proxy_member_unreachable", "member=\"" + LabelValue(m.name) + "\"",
             m.unreachable ? 1 : 0);
  }
  return w.Take();
}

Result<HttpRequestLine> ParseRequestLine(std::string_view head) {
  const size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol == std::string_view::npos ? head.size() : eol);
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) {
    return Fail(ErrorCode::kInvalidArgument, "http: request line has no method");
  }
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) {
    return Fail(ErrorCode::kInvalidArgument, "http: request line has no target");
  }
  if (line.substr(sp2 + 1).rfind("HTTP/", 0) != 0) {
    return Fail(ErrorCode::kInvalidArgument, "http: request line has no HTTP version");
  }
  HttpRequestLine out;
  out.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  out.path = std::string(target.substr(0, target.find('?')));
  return out;
}

HttpResponse HandleStatusRequest(std::string_view head, const ProxyStatus& status) {
  Result<HttpRequestLine> line = ParseRequestLine(head);
  if (!line) return HttpResponse{400, "text/plain", line.error().message + "\n"};
  if (line->method != "GET") {
    return HttpResponse{405, "text/plain", "only GET is supported\n"};
  }
  if (line->path == "/status" || line->path == "/") {
    return HttpResponse{200, "application/json", RenderStatusJson(status)};
  }
  if (line->path == "/metrics") {
    return HttpResponse{200, "text/plain; version=0.0.4", RenderPrometheus(status)};
  }
  return HttpResponse{404, "text/plain", "not found: try /status or /metrics\n"};
}

std::string SerializeResponse(const HttpResponse& r) {
  std::string_view reason = "OK";
  switch (r.status) {
    case 400:
      reason = "Bad Request";
      break;
    case 404:
      reason = "Not Found";
      break;
    case 405:
      reason = "Method Not Allowed";
      break;
    default:
      break;
  }
  std::string out = "HTTP/1.0 " + std::to_string(r.status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

}  // namespace pgwarden::proxy
