#include "cli/commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "cli/cluster_table.h"
#include "cli/edit_config.h"
#include "cluster/cluster_store.h"
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
  return Loaded{loaded->config, std::move(read->view)};
}

// "http://127.0.0.1:8008/patroni" -> "http://127.0.0.1:8008"
std::string ApiBase(const std::string& api_url) {
  auto scheme = api_url.find("://");
  auto path = api_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return path == std::string::npos ? api_url : api_url.substr(0, path);
}

bool Confirm(const std::string& question) {
  std::cout << question << " [y/N]: " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) {
    std::cout << "\n";
    return false;
  }
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

// pause / resume, as patronictl does: PATCH /config {"pause": true|null} on the leader (then the
// other members, leader first, until one answers); with --wait, until every member's REST API
// reports the new mode (GET /patroni "pause"), for `timeout` at most.
int TogglePause(const Common& common, bool pause, bool wait, std::chrono::seconds timeout) {
  auto loaded = LoadCluster(common);
  if (!loaded) return exit_status;
  const auto& view = loaded->view;
  if (ConfigPaused(view) == pause) {
    std::cerr << "Cluster is " << (pause ? "already" : "not") << " paused\n";
    return 1;
  }
  std::vector<const core::Member*> order;
  if (view.leader) {
    if (const core::Member* l = view.FindMember(view.leader->holder)) order.push_back(l);
  }
  for (const auto& [name, m] : view.members) {
    if (!view.LeaderIs(name)) order.push_back(&m);
  }
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
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::string> pending;
    while (true) {
      pending.clear();
      for (const auto& [name, member] : view.members) {
        if (member.api_url.empty()) continue;
        auto status = api::HttpCall(RequestTo(member, "GET", "/patroni", loaded->config));
        auto j = status ? nlohmann::json::parse(status->body, nullptr, false) : nlohmann::json();
        const bool reported = j.is_object() && j.contains("pause") && j["pause"].is_boolean() &&
                              j["pause"].get<bool>();
        if (reported != pause) pending.push_back(name.str());
      }
      if (pending.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        std::string names;
        for (const auto& n : pending) names += (names.empty() ? "" : ", ") + n;
        std::cerr << "Timed out after " << timeout.count() << " s: not yet " << what << "d on "
                  << names << "\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    std::cout << "Success: cluster management is " << (pause ? "paused" : "resumed") << "\n";
    return 0;
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
    auto table = BuildClusterTable(loaded->config.scope, loaded->view);
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
  auto rs = std::make_shared<MemberArgs>();
  auto* restart = app.add_subcommand("restart", "Restart a member's PostgreSQL (no failover)");
  AddConfigOption(restart, *common);
  restart->add_option("member", rs->member, "the member to restart")->required();
  restart->add_option("--role", rs->role, "only if the member has this role")
      ->check(CLI::IsMember({"primary", "replica", "standby_leader"}));
  restart->add_flag("--pending", rs->pending, "only if a restart is pending");
  restart->add_flag("--force", rs->force, "do not ask for confirmation");
  restart->callback([common, rs] {
    auto loaded = LoadCluster(*common);
    if (!loaded) return;
    const core::Member* target = FindTarget(*loaded, rs->member);
    if (!target) return;
    if (!rs->force && !Confirm("Are you sure you want to restart member " + rs->member + "?")) {
      std::cerr << "Aborted\n";
      exit_status = 1;
      return;
    }
    nlohmann::json body = nlohmann::json::object();
    if (!rs->role.empty()) body["role"] = rs->role;
    if (rs->pending) body["restart_pending"] = true;
    PostRequest(*target, "/restart", body, loaded->config);
  });

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
