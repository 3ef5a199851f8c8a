#include "cli/commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "api/patroni_api.h"
#include "cli/cluster_table.h"
#include "cli/edit_config.h"
#include "cli/pause_wait.h"
#include "cluster/cluster_store.h"
#include "cluster/conn_url.h"
#include "config/config.h"
#include "config/config_edit.h"
#include "dcs/etcd3/etcd_dcs.h"

namespace pgwarden::cli {
namespace {

int exit_status = 0;

struct Common {
  std::string config_path;
};

// Loads the config and reads the cluster. Prints what went wrong and returns nullopt.
struct Loaded {
  config::Config config;
  core::ClusterView view;
  std::map<MemberName, std::string> scheduled_restarts;  // member key "scheduled_restart"
  std::unique_ptr<dcs::Dcs> etcd;                        // the connection it was read with
};

std::optional<Loaded> LoadCluster(const Common& common) {
  auto loaded = config::LoadConfigFile(common.config_path);
  if (!loaded) {
    std::cerr << loaded.error().message << "\n";
    exit_status = 2;
    return std::nullopt;
  }
  dcs::EtcdOptions options;
  for (const auto& h : loaded->config.etcd.hosts) options.endpoints.push_back(h.ToString());
  auto etcd = dcs::EtcdDcs::Create(options);
  if (!etcd) {
    std::cerr << "etcd: " << etcd.error().ToString() << "\n";
    exit_status = 1;
    return std::nullopt;
  }
  cluster::ClusterStore store(**etcd,
                              cluster::Keys(loaded->config.dcs_namespace, loaded->config.scope));
  auto read = store.Read();
  if (!read) {
    std::cerr << "cannot read the cluster from etcd: " << read.error().ToString() << "\n";
    exit_status = 1;
    return std::nullopt;
  }
  for (const auto& problem : read->problems) std::cerr << "warning: " << problem.message << "\n";
  return Loaded{loaded->config, std::move(read->view), std::move(read->scheduled_restarts),
                std::move(*etcd)};
}

// "http://127.0.0.1:8008/patroni" -> "http://127.0.0.1:8008"
std::string ApiBase(const std::string& api_url) {
  auto scheme = api_url.find("://");
  auto path = api_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return path == std::string::npos ? api_url : api_url.substr(0, path);
}

// Prints `question` and reads one line; nullopt at the end of input.
std::optional<std::string> Ask(const std::string& question) {
  std::cout << question << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) {
    std::cout << "\n";
    return std::nullopt;
  }
  return answer;
}

// Asks for a typed answer; true when the line read equals `expected`.
bool ConfirmTyped(const std::string& question, const std::string& expected) {
  return Ask(question) == expected;
}

// `pgwarden remove`: deletes the cluster's keys, as patronictl remove, but only once no member
// is registered (every agent stopped: their member keys expired with their leases), so that no
// running agent re-creates keys or loses its leader key under it.
int RemoveCluster(const Loaded& loaded, bool force) {
  const std::string& scope = loaded.config.scope;
  const cluster::Keys keys(loaded.config.dcs_namespace, scope);
  // The raw keys, not the parsed view: a member key the view left out as malformed still means
  // an agent may be running.
  auto members = loaded.etcd->Get(keys.members, /*prefix=*/true);
  if (!members) {
    std::cerr << "reading " << keys.members << " in etcd: " << members.error().ToString() << "\n";
    return 1;
  }
  if (!members->kvs.empty()) {
    std::string names;
    for (const auto& kv : members->kvs) {
      names += (names.empty() ? "" : ", ") + kv.key.substr(keys.members.size());
    }
    std::cerr << "cluster " << scope << " still has registered members (" << names
              << "): stop every agent first; their member keys expire with their leases\n";
    return 1;
  }
  if (!force) {
    if (!ConfirmTyped("Please confirm the cluster name to remove: ", scope)) {
      std::cerr << "Aborted: the name does not match\n";
      return 1;
    }
    if (!ConfirmTyped("You are about to remove all information in etcd for " + scope +
                          ", please type: \"Yes I am aware\": ",
                      "Yes I am aware")) {
      std::cerr << "Aborted\n";
      return 1;
    }
  }
  auto deleted = loaded.etcd->Delete(keys.prefix, /*prefix=*/true);
  if (!deleted) {
    std::cerr << "deleting " << keys.prefix << " in etcd: " << deleted.error().ToString() << "\n";
    return 1;
  }
  std::cout << "Removed cluster " << scope << " (" << *deleted << " keys under " << keys.prefix
            << ")\n";
  return 0;
}

bool Confirm(const std::string& question) {
  const std::optional<std::string> answer = Ask(question + " [y/N]: ");
  return answer == "y" || answer == "Y" || answer == "yes";
}

// Sends a request to a member's REST API and reports the answer (text, or the JSON body).
void PostRequest(const core::Member& target, const std::string& path, const nlohmann::json& body,
                 const config::Config& config, const std::string& method = "POST") {
  api::HttpClientRequest request;
  request.method = method;
  request.url = ApiBase(target.api_url) + path;
  request.body = body.dump();
  request.timeout = std::chrono::seconds(60);
  if (config.restapi.authentication) {
    request.username = config.restapi.authentication->username;
    request.password = config.restapi.authentication->password;
  }
  auto response = api::HttpCall(request);
  if (!response) {
    std::cerr << "request to " << request.url << " failed: " << response.error().ToString() << "\n";
    exit_status = 1;
    return;
  }
  std::string text = response->body;
  if (!text.empty() && text.back() != '\n') text += '\n';
  if (response->status == 200 || response->status == 202) {
    std::cout << text;
  } else {
    std::cerr << "error (" << response->status << "): " << text;
    exit_status = 1;
  }
}

// The member named `name`, with an API address; prints why not and returns nullptr.
const core::Member* FindTarget(const Loaded& loaded, const std::string& name) {
  const core::Member* m = loaded.view.FindMember(MemberName(name));
  if (!m) {
    std::cerr << "member " << name << " does not exist in cluster " << loaded.config.scope << "\n";
    exit_status = 1;
    return nullptr;
  }
  if (m->api_url.empty()) {
    std::cerr << "member " << name << " has no REST API address in its member key\n";
    exit_status = 1;
    return nullptr;
  }
  return m;
}

Result<std::string> ReadInput(const std::string& path) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(path);
  if (!in) return Fail(ErrorCode::kNotFound, "cannot read " + path);
  text << in.rdbuf();
  return text.str();
}

void AddConfigOption(CLI::App* cmd, Common& common) {
  cmd->add_option("-c,--config", common.config_path, "the agent's configuration file")
      ->envname("PGWARDEN_CONFIG")
      ->required();
}

// edit-config: patch from the arguments, diff against the current config, confirmation, then
// PATCH /config on the leader (any member without one): the agents validate and write.
template <typename EditArgs>
int EditConfig(const Common& common, EditArgs& args) {
  if (!args.apply_path.empty()) {
    if (args.apply_path == "-" && !args.force) {
      std::cerr << "--apply - reads the changes from stdin: add --force (no confirmation)\n";
      return 1;
    }
    auto text = ReadInput(args.apply_path);
    if (!text) {
      std::cerr << text.error().message << "\n";
      return 1;
    }
    args.edit.apply = *text;
    args.edit.apply_source = args.apply_path == "-" ? "stdin" : args.apply_path;
  }
  auto patch = BuildConfigPatch(args.edit);
  if (!patch) {
    std::cerr << patch.error().message << "\n";
    return 1;
  }
  auto loaded = LoadCluster(common);
  if (!loaded) return exit_status;
  if (!loaded->view.config_json) {
    std::cerr << "cluster " << loaded->config.scope << " has no config key in etcd yet\n";
    return 1;
  }
  auto merged = config::MergeJsonPatch(loaded->view.config_json, *patch);
  if (!merged) {
    std::cerr << merged.error().message << "\n";
    return 1;
  }
  const std::string diff = config::JsonDiff(*loaded->view.config_json, *merged);
  if (diff.empty()) {
    std::cout << "Not changed\n";
    return 0;
  }
  std::cout << "---\n+++\n" << diff;
  if (!args.force && !Confirm("Apply these changes?")) {
    std::cerr << "Aborted\n";
    return 1;
  }
  const auto& view = loaded->view;
  const core::Member* target = view.leader ? view.FindMember(view.leader->holder) : nullptr;
  for (const auto& [name, member] : view.members) {
    if (target && !target->api_url.empty()) break;
    if (!member.api_url.empty()) target = &member;
  }
  if (!target || target->api_url.empty()) {
    std::cerr << "no member with a REST API address to send the change to\n";
    return 1;
  }
  exit_status = 0;
  PostRequest(*target, "/config", nlohmann::json::parse(*patch), loaded->config, "PATCH");
  if (exit_status == 0) std::cout << "Configuration changed\n";
  return exit_status;
}

// Whether the dynamic config says `pause: true` (Patroni's Cluster.is_paused()).
bool ConfigPaused(const core::ClusterView& view) {
  if (!view.config_json) return false;
  auto j = nlohmann::json::parse(*view.config_json, nullptr, false);
  return j.is_object() && j.contains("pause") && j["pause"].is_boolean() && j["pause"].get<bool>();
}

api::HttpClientRequest RequestTo(const core::Member& target, const std::string& method,
                                 const std::string& path, const config::Config& config) {
  api::HttpClientRequest request;
  request.method = method;
  request.url = ApiBase(target.api_url) + path;
  request.timeout = std::chrono::seconds(10);
  if (config.restapi.authentication) {
    request.username = config.restapi.authentication->username;
    request.password = config.restapi.authentication->password;
  }
  return request;
}

// Every member, the leader first: whom to ask for a cluster-wide change.
std::vector<const core::Member*> LeaderFirst(const core::ClusterView& view) {
  std::vector<const core::Member*> order;
  if (view.leader) {
    if (const core::Member* l = view.FindMember(view.leader->holder)) order.push_back(l);
  }
  for (const auto& [name, m] : view.members) {
    if (!view.LeaderIs(name)) order.push_back(&m);
  }
  return order;
}

// --scheduled: ISO 8601 with a zone as given; without one it is local time, as patronictl takes
// it (the local UTC offset of that moment is appended).
Result<std::string> ScheduleWithZone(const std::string& text) {
  auto parsed = api::ParseTimestamp(text);
  if (parsed) return text;
  if (parsed.error().code == ErrorCode::kInvalidArgument) {
    auto as_utc = api::ParseTimestamp(text + "Z");
    if (as_utc) {
      const time_t t = std::chrono::system_clock::to_time_t(*as_utc);
      tm local{};
      localtime_r(&t, &local);
      const long offset_min = local.tm_gmtoff / 60;
      char zone[48];
      std::snprintf(zone, sizeof zone, "%c%02ld:%02ld", offset_min < 0 ? '-' : '+',
                    std::labs(offset_min) / 60, std::labs(offset_min) % 60);
      return text + zone;
    }
  }
  return Fail(ErrorCode::kInvalidArgument,
              "--scheduled \"" + text +
                  "\": not a time; use ISO 8601, e.g. 2026-11-26T08:30:00+00:00, or now");
}

// The members named (every member when none is named); prints why not and returns nullopt.
std::optional<std::vector<const core::Member*>> Targets(const Loaded& loaded,
                                                        const std::vector<std::string>& names) {
  std::vector<const core::Member*> out;
  if (names.empty()) {
    for (const auto& [name, m] : loaded.view.members) out.push_back(&m);
  }
  for (const auto& name : names) {
    const core::Member* m = FindTarget(loaded, name);
    if (!m) return std::nullopt;
    out.push_back(m);
  }
  if (out.empty()) {
    std::cerr << "cluster " << loaded.config.scope << " has no members\n";
    exit_status = 1;
    return std::nullopt;
  }
  return out;
}

std::string Names(const std::vector<const core::Member*>& members) {
  std::string out;
  for (const auto* m : members) out += (out.empty() ? "" : ", ") + m->name.str();
  return out;
}

struct RestartArgs {
  std::vector<std::string> members;
  std::string role, scheduled, pg_version;
  int timeout_s = 0;
  bool pending = false;
  bool force = false;
};

// restart, as patronictl: POST /restart on each member, now or with a schedule; the answers
// reported per member in patronictl's words.
int RestartMembers(const Common& common, const RestartArgs& args) {
  std::optional<std::string> schedule;
  if (!args.scheduled.empty() && args.scheduled != "now") {
    auto at = ScheduleWithZone(args.scheduled);
    if (!at) {
      std::cerr << at.error().message << "\n";
      return 1;
    }
    schedule = *at;
  }
  auto loaded = LoadCluster(common);
  if (!loaded) return exit_status;
  if (schedule && ConfigPaused(loaded->view)) {
    std::cerr << "Can't schedule restart in the paused mode\n";
    return 1;
  }
  auto targets = Targets(*loaded, args.members);
  if (!targets) return exit_status;
  if (!args.force && !Confirm("Are you sure you want to restart members " + Names(*targets) +
                              (schedule ? " at " + *schedule : "") + "?")) {
    std::cerr << "Aborted\n";
    return 1;
  }
  nlohmann::json body = nlohmann::json::object();
  if (!args.role.empty()) body["role"] = args.role;
  if (args.pending) body["restart_pending"] = true;
  if (!args.pg_version.empty()) body["postgres_version"] = args.pg_version;
  if (args.timeout_s > 0) body["timeout"] = args.timeout_s;
  if (schedule) body["schedule"] = *schedule;
  int status = 0;
  for (const core::Member* m : *targets) {
    const std::string name = m->name.str();
    if (m->api_url.empty()) {
      std::cerr << "Failed: restart for member " << name << ": no REST API address\n";
      status = 1;
      continue;
    }
    if (schedule && args.force && loaded->scheduled_restarts.contains(m->name)) {
      // --force replaces a restart already scheduled there (patronictl does the same).
      auto gone = api::HttpCall(RequestTo(*m, "DELETE", "/restart", loaded->config));
      if (!gone || gone->status >= 400) {
        std::cerr << "Failed: flush scheduled restart for member " << name << "\n";
      }
    }
    api::HttpClientRequest request = RequestTo(*m, "POST", "/restart", loaded->config);
    request.body = body.dump();
    request.timeout = std::chrono::seconds(100 + args.timeout_s);
    auto response = api::HttpCall(request);
    if (!response) {
      std::cerr << "Failed: restart for member " << name << ": " << response.error().ToString()
                << "\n";
      status = 1;
    } else if (response->status == 200) {
      std::cout << "Success: restart on member " << name << "\n";
    } else if (response->status == 202) {
      std::cout << "Success: restart scheduled on member " << name << "\n";
    } else if (response->status == 409) {
      std::cerr << "Failed: another restart is already scheduled on member " << name << "\n";
      status = 1;
    } else {
      std::cerr << "Failed: restart for member " << name << ", status code=" << response->status
                << ", (" << response->body << ")\n";
      status = 1;
    }
  }
  return status;
}

// flush restart: DELETE /restart on each member that shows a scheduled restart. flush
// switchover: DELETE /switchover on the leader (then the others until one answers).
int Flush(const Common& common, const std::string& target,
          const std::vector<std::string>& members) {
  auto loaded = LoadCluster(common);
  if (!loaded) return exit_status;
  const auto& view = loaded->view;
  auto report = [](const Result<api::HttpResponse>& r, const std::string& name) {
    if (r && r->status < 400) {
      std::cout << "Success: flush scheduled restart for member " << name << "\n";
      return 0;
    }
    std::cerr << "Failed: flush scheduled restart for member " << name;
    if (r) {
      std::cerr << ", status code=" << r->status << ", (" << r->body << ")\n";
    } else {
      std::cerr << ": " << r.error().ToString() << "\n";
    }
    return 1;
  };
  if (target == "restart") {
    auto targets = Targets(*loaded, members);
    if (!targets) return exit_status;
    int status = 0;
    for (const core::Member* m : *targets) {
      if (!loaded->scheduled_restarts.contains(m->name) || m->api_url.empty()) {
        std::cout << "No scheduled restart for member " << m->name.str() << "\n";
        continue;
      }
      auto r = api::HttpCall(RequestTo(*m, "DELETE", "/restart", loaded->config));
      status |= report(r, m->name.str());
    }
    return status;
  }
  if (!view.failover || !view.failover->scheduled_at) {
    std::cout << "No pending scheduled switchover\n";
    return 0;
  }
  const std::vector<const core::Member*> order = LeaderFirst(view);
  for (const core::Member* m : order) {
    if (m->api_url.empty()) continue;
    auto r = api::HttpCall(RequestTo(*m, "DELETE", "/switchover", loaded->config));
    if (!r) continue;
    if (r->status == 200 || r->status == 404) {
      (r->status == 200 ? std::cout : std::cerr)
          << (r->status == 200 ? "Success: " : "Failed: ") << r->body << "\n";
      return r->status == 200 ? 0 : 1;
    }
    std::cerr << "Failed: member=" << m->name.str() << ", status_code=" << r->status << ", ("
              << r->body << ")\n";
  }
  std::cerr << "Could not find any accessible member of cluster " << loaded->config.scope << "\n";
  return 1;
}

// pause / resume, as patronictl does: PATCH /config {"pause": true|null} on the leader (then the
// other members, leader first, until one answers); with --wait, until every member's REST API
// reports the new mode (GET /patroni "pause"), for `timeout` at most. Members that cannot be
// reached are reported apart, and make the exit status 1 (pause_wait.h).
int TogglePause(const Common& common, bool pause, bool wait, std::chrono::seconds timeout) {
  auto loaded = LoadCluster(common);
  if (!loaded) return exit_status;
  const auto& view = loaded->view;
  if (ConfigPaused(view) == pause) {
    std::cerr << "Cluster is " << (pause ? "already" : "not") << " paused\n";
    return 1;
  }
  const std::vector<const core::Member*> order = LeaderFirst(view);
  const nlohmann::json body = {{"pause", pause ? nlohmann::json(true) : nlohmann::json(nullptr)}};
  const std::string what = pause ? "pause" : "resume";
  for (const core::Member* m : order) {
    if (m->api_url.empty()) continue;
    api::HttpClientRequest request = RequestTo(*m, "PATCH", "/config", loaded->config);
    request.body = body.dump();
    auto response = api::HttpCall(request);
    if (!response) {
      std::cerr << "warning: member " << m->name.str() << " is not accessible ("
                << response.error().ToString() << ")\n";
      continue;
    }
    if (response->status != 200) {
      std::cerr << "Failed: " << what << " cluster management status code=" << response->status
                << ", (" << response->body << ")\n";
      return 1;
    }
    if (!wait) {
      std::cout << "Success: cluster management is " << (pause ? "paused" : "resumed") << "\n";
      return 0;
    }
    std::cout << "'" << what << "' request sent, waiting until it is recognized by all nodes\n";
    // Until every member that answers reports the new mode; one that cannot be reached is
    // retried for a few more rounds, then reported apart (never counted as done).
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    constexpr int kUnreachableRounds = 4;
    int rounds_after_reachable_done = 0;
    PauseProgress progress;
    bool timed_out = false;
    while (true) {
      std::vector<PauseAnswer> answers;
      for (const auto& [name, member] : view.members) {
        PauseAnswer a{name.str(), std::nullopt, "no REST API address in its member key"};
        if (!member.api_url.empty()) {
          api::HttpClientRequest request = RequestTo(member, "GET", "/patroni", loaded->config);
          request.timeout = std::chrono::seconds(2);
          auto status = api::HttpCall(request);
          if (status) {
            a.body = status->body;
          } else {
            a.error = status.error().ToString();
          }
        }
        answers.push_back(std::move(a));
      }
      progress = JudgePauseAnswers(answers, pause);
      if (progress.ReachableDone() &&
          (progress.unreachable.empty() || ++rounds_after_reachable_done >= kUnreachableRounds)) {
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        timed_out = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const std::string message =
        PauseWaitMessage(progress, pause, timed_out, static_cast<int>(timeout.count()));
    const bool ok = progress.pending.empty() && progress.unreachable.empty();
    (ok ? std::cout : std::cerr) << message;
    return ok ? 0 : 1;
  }
  std::cerr << "Can not find accessible cluster member\n";
  return 1;
}

}  // namespace

int CommandExitStatus() { return exit_status; }

void RegisterCommands(CLI::App& app) {
  auto common = std::make_shared<Common>();

  // --- check-config ---
  auto* check = app.add_subcommand("check-config", "Validate a configuration file and exit");
  AddConfigOption(check, *common);
  check->callback([common] {
    exit_status = config::CheckConfigCommand(common->config_path, std::cout, std::cerr);
  });

  // --- list ---
  auto format = std::make_shared<std::string>("pretty");
  auto* list = app.add_subcommand("list", "Show the cluster's members, roles, states and lag");
  AddConfigOption(list, *common);
  list->add_option("-f,--format", *format, "pretty or json")
      ->check(CLI::IsMember({"pretty", "json"}));
  list->callback([common, format] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    auto table = BuildClusterTable(loaded->config.scope, loaded->view, loaded->scheduled_restarts);
    std::cout << (*format == "json" ? RenderJson(table) : RenderTable(table));
  });

  // --- history ---
  auto* history = app.add_subcommand("history", "Show the cluster's timeline history");
  AddConfigOption(history, *common);
  history->callback([common] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    std::cout << "TL\tLSN\tReason\tTimestamp\tNew Leader\n";
    for (const auto& h : loaded->view.history) {
      std::cout << h.timeline.value() << "\t" << h.switch_lsn.ToString() << "\t" << h.reason << "\t"
                << h.time << "\t" << h.new_leader.str() << "\n";
    }
  });

  // --- remove ---
  auto remove_force = std::make_shared<bool>(false);
  auto* remove = app.add_subcommand(
      "remove", "Delete a stopped cluster's keys from etcd (every agent must be stopped first)");
  AddConfigOption(remove, *common);
  remove->add_flag("--force", *remove_force, "do not ask for the typed confirmations");
  remove->callback([common, remove_force] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    exit_status = RemoveCluster(*loaded, *remove_force);
  });

  // --- show-config ---
  auto* show = app.add_subcommand(
      "show-config", "Show the cluster's dynamic configuration (etcd `config` key) as YAML");
  AddConfigOption(show, *common);
  show->callback([common] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    if (!loaded->view.config_json) {
      std::cerr << "cluster " << loaded->config.scope << " has no config key in etcd yet\n";
      exit_status = 1;
      return;
    }
    std::cout << config::JsonToYaml(*loaded->view.config_json);
  });

  // --- dsn ---
  struct DsnArgs {
    std::string role = "leader";
    std::string member;
  };
  auto dsn_args = std::make_shared<DsnArgs>();
  auto* dsn = app.add_subcommand(
      "dsn", "Print a libpq connection string (host=... port=...) for a member, as patronictl dsn");
  AddConfigOption(dsn, *common);
  dsn->add_option("member", dsn_args->member, "the member (default: chosen by --role)");
  dsn->add_option("-r,--role", dsn_args->role, "leader (default), primary, replica or any")
      ->check(CLI::IsMember({"leader", "primary", "master", "replica", "standby", "any"}));
  dsn->callback([common, dsn_args] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    const core::ClusterView& view = loaded->view;
    const std::string leader = view.leader ? view.leader->holder.str() : "";
    const core::Member* chosen = nullptr;
    for (const auto& [name, member] : view.members) {
      const bool is_leader = name.str() == leader;
      const std::string& role = dsn_args->role;
      const bool wanted =
          !dsn_args->member.empty()
              ? name.str() == dsn_args->member
              : role == "any" ||
                    ((role == "replica" || role == "standby") ? !is_leader : is_leader);
      if (wanted) {
        chosen = &member;
        break;
      }
    }
    if (!chosen) {
      std::cerr << (dsn_args->member.empty() ? "no member with role " + dsn_args->role
                                             : "no member " + dsn_args->member)
                << " in cluster " << loaded->config.scope << "\n";
      exit_status = 1;
      return;
    }
    auto address = cluster::ParseConnUrl(chosen->conn_url);
    if (!address) {
      std::cerr << "member " << chosen->name.str() << " has no usable conn_url (\""
                << chosen->conn_url << "\")\n";
      exit_status = 1;
      return;
    }
    std::cout << "host=" << address->host << " port=" << address->port.value_or(5432) << "\n";
  });

  // --- switchover ---
  struct SwitchoverArgs {
    std::string leader, candidate, scheduled;
    bool force = false;
  };
  auto sw = std::make_shared<SwitchoverArgs>();
  auto* switchover = app.add_subcommand(
      "switchover", "Hand the primary role to a replica (planned, no data loss)");
  AddConfigOption(switchover, *common);
  switchover->add_option("--leader", sw->leader, "the current leader (checked)");
  switchover->add_option("--candidate", sw->candidate,
                         "the member to promote (default: the best replica)");
  switchover->add_option("--scheduled", sw->scheduled,
                         "when, ISO 8601 with a time zone (default: now)");
  switchover->add_flag("--force", sw->force, "do not ask for confirmation");
  switchover->callback([common, sw] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    const auto& view = loaded->view;
    if (!view.leader) {
      std::cerr << "this cluster has no leader: a switchover needs one (use `pgwarden failover`)\n";
      exit_status = 1;
      return;
    }
    const std::string leader = view.leader->holder.str();
    if (!sw->leader.empty() && sw->leader != leader) {
      std::cerr << "member " << sw->leader << " is not the leader of cluster "
                << loaded->config.scope << " (" << leader << " is)\n";
      exit_status = 1;
      return;
    }
    if (!sw->candidate.empty() && !view.FindMember(MemberName(sw->candidate))) {
      std::cerr << "member " << sw->candidate << " does not exist in cluster "
                << loaded->config.scope << "\n";
      exit_status = 1;
      return;
    }
    const core::Member* target = view.FindMember(view.leader->holder);
    if (!target) {
      std::cerr << "the leader " << leader << " has no member key (no API address)\n";
      exit_status = 1;
      return;
    }
    std::string what = "switchover cluster " + loaded->config.scope + ", demoting current leader " +
                       leader + (sw->candidate.empty() ? "" : " in favour of " + sw->candidate);
    if (!sw->force && !Confirm("Are you sure you want to " + what + "?")) {
      std::cerr << "Aborted\n";
      exit_status = 1;
      return;
    }
    nlohmann::json body = {{"leader", leader}};
    if (!sw->candidate.empty()) body["candidate"] = sw->candidate;
    if (!sw->scheduled.empty() && sw->scheduled != "now") body["scheduled_at"] = sw->scheduled;
    PostRequest(*target, "/switchover", body, loaded->config);
  });

  // --- failover ---
  auto fo = std::make_shared<SwitchoverArgs>();
  auto* failover = app.add_subcommand(
      "failover", "Promote a named replica, also when there is no healthy primary");
  AddConfigOption(failover, *common);
  failover->add_option("--candidate", fo->candidate, "the member to promote")->required();
  failover->add_flag("--force", fo->force, "do not ask for confirmation");
  failover->callback([common, fo] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    const auto& view = loaded->view;
    const core::Member* candidate = view.FindMember(MemberName(fo->candidate));
    if (!candidate) {
      std::cerr << "member " << fo->candidate << " does not exist in cluster "
                << loaded->config.scope << "\n";
      exit_status = 1;
      return;
    }
    // Ask the leader when there is one (it demotes itself), else the candidate.
    const core::Member* target = view.leader ? view.FindMember(view.leader->holder) : nullptr;
    if (!target) target = candidate;
    std::string what = "failover cluster " + loaded->config.scope + " to " + fo->candidate +
                       (view.leader ? ", demoting current leader " + view.leader->holder.str()
                                    : " (no leader now)");
    if (!fo->force && !Confirm("Are you sure you want to " + what + "?")) {
      std::cerr << "Aborted\n";
      exit_status = 1;
      return;
    }
    PostRequest(*target, "/failover", {{"candidate", fo->candidate}}, loaded->config);
  });

  // --- edit-config (non-interactive) ---
  struct EditArgs {
    EditConfigArgs edit;
    std::string apply_path;
    bool force = false;
  };
  auto ed = std::make_shared<EditArgs>();
  auto* edit = app.add_subcommand(
      "edit-config",
      "Change the cluster's dynamic configuration (etcd `config` key); shows the diff");
  AddConfigOption(edit, *common);
  edit->add_option("-s,--set", ed->edit.set,
                   "key.path=value (YAML value; null removes the key); repeatable");
  edit->add_option("-p,--pg", ed->edit.pg, "name=value: postgresql.parameters.<name>; repeatable");
  edit->add_option("--apply", ed->apply_path, "a YAML file of changes (merged), - for stdin");
  edit->add_flag("--force", ed->force, "do not ask for confirmation");
  edit->callback([common, ed] { exit_status = EditConfig(*common, *ed); });

  // --- pause / resume (maintenance mode) ---
  struct PauseArgs {
    bool wait = false;
    int timeout_s = 60;
  };
  for (const bool pause : {true, false}) {
    auto pa = std::make_shared<PauseArgs>();
    auto* cmd = app.add_subcommand(
        pause ? "pause" : "resume",
        pause ? "Maintenance mode: no automatic failover, start, stop or restart of PostgreSQL"
              : "Leave maintenance mode: automatic failover again");
    AddConfigOption(cmd, *common);
    cmd->add_flag("--wait", pa->wait, "wait until every member has recognized the change");
    cmd->add_option("--timeout", pa->timeout_s, "seconds --wait waits at most (default 60)")
        ->check(CLI::PositiveNumber);
    cmd->callback([common, pa, pause] {
      exit_status = TogglePause(*common, pause, pa->wait, std::chrono::seconds(pa->timeout_s));
    });
  }

  // --- restart / reload / reinit ---
  struct MemberArgs {
    std::string member;
    std::string role;
    bool pending = false;
    bool force = false;
  };
  auto rs = std::make_shared<RestartArgs>();
  auto* restart = app.add_subcommand(
      "restart", "Restart members' PostgreSQL (no failover), now or at a scheduled time");
  AddConfigOption(restart, *common);
  restart->add_option("member", rs->members, "the members to restart (default: every member)");
  restart->add_option("--role", rs->role, "only if the member has this role")
      ->check(CLI::IsMember({"primary", "replica", "standby_leader"}));
  restart->add_option("--scheduled", rs->scheduled,
                      "when: ISO 8601 (without a zone: local time), or now (the default)");
  restart->add_option("--pg-version", rs->pg_version,
                      "only if the member's PostgreSQL version is lower than this (e.g. 15.6)");
  restart->add_option("--timeout", rs->timeout_s, "seconds PostgreSQL may take to start")
      ->check(CLI::PositiveNumber);
  restart->add_flag("--pending", rs->pending, "only if a restart is pending");
  restart->add_flag("--force", rs->force,
                    "do not ask for confirmation; with --scheduled, replace a scheduled restart");
  restart->callback([common, rs] { exit_status = RestartMembers(*common, *rs); });

  // --- flush (discard scheduled events) ---
  struct FlushArgs {
    std::string target;
    std::vector<std::string> members;
    bool force = false;  // accepted as patronictl's; nothing is asked
  };
  auto fl = std::make_shared<FlushArgs>();
  auto* flush = app.add_subcommand(
      "flush", "Discard scheduled events: restart (on members) or the scheduled switchover");
  AddConfigOption(flush, *common);
  flush->add_option("target", fl->target, "restart or switchover")
      ->required()
      ->check(CLI::IsMember({"restart", "switchover"}));
  flush->add_option("member", fl->members, "restart: the members (default: every member)");
  flush->add_flag("--force", fl->force, "do not ask for confirmation");
  flush->callback([common, fl] { exit_status = Flush(*common, fl->target, fl->members); });

  auto rl = std::make_shared<MemberArgs>();
  auto* reload =
      app.add_subcommand("reload", "Make a member re-read its configuration file (as SIGHUP does)");
  AddConfigOption(reload, *common);
  reload->add_option("member", rl->member, "the member to reload")->required();
  reload->add_flag("--force", rl->force, "do not ask for confirmation");
  reload->callback([common, rl] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    const core::Member* target = FindTarget(*loaded, rl->member);
    if (!target) return;
    if (!rl->force && !Confirm("Are you sure you want to reload member " + rl->member + "?")) {
      std::cerr << "Aborted\n";
      exit_status = 1;
      return;
    }
    PostRequest(*target, "/reload", nlohmann::json::object(), loaded->config);
  });

  auto ri = std::make_shared<MemberArgs>();
  auto* reinit = app.add_subcommand(
      "reinit", "Wipe a replica's data directory and clone it again from the leader");
  AddConfigOption(reinit, *common);
  reinit->add_option("member", ri->member, "the replica to reinitialize")->required();
  reinit->add_flag("--force", ri->force, "do not ask for confirmation");
  reinit->callback([common, ri] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    const core::Member* target = FindTarget(*loaded, ri->member);
    if (!target) return;
    if (!ri->force && !Confirm("Are you sure you want to reinitialize member " + ri->member +
                               "? Its data directory is removed")) {
      std::cerr << "Aborted\n";
      exit_status = 1;
      return;
    }
    PostRequest(*target, "/reinitialize", {{"force", ri->force}}, loaded->config);
  });
}

}  // namespace pgwarden::cli
