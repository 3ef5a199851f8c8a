#include "cli/commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "cli/cluster_table.h"
#include "cluster/cluster_store.h"
#include "config/config.h"
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

// POSTs a switchover/failover to a member's REST API and reports the answer.
void PostRequest(const core::Member& target, const std::string& path, const nlohmann::json& body,
                 const config::Config& config) {
  api::HttpClientRequest request;
  request.method = "POST";
  request.url = ApiBase(target.api_url) + path;
  request.body = body.dump();
  request.timeout = std::chrono::seconds(60);
  if (config.restapi.authentication) {
    request.username = config.restapi.authentication->username;
    request.password = config.restapi.authentication->password;
  }
  auto response = api::HttpCall(request);
  if (!response) {
    std::cerr << "request to " << request.url << " failed: " << response.error().ToString()
              << "\n";
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

void AddConfigOption(CLI::App* cmd, Common& common) {
  cmd->add_option("-c,--config", common.config_path, "the agent's configuration file")
      ->envname("PGWARDEN_CONFIG")
      ->required();
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
      std::cout << h.timeline.value() << "\t" << h.switch_lsn.ToString() << "\t" << h.reason
                << "\t" << h.time << "\t" << h.new_leader.str() << "\n";
    }
  });

  // --- switchover ---
  struct SwitchoverArgs {
    std::string leader, candidate, scheduled;
    bool force = false;
  };
  auto sw = std::make_shared<SwitchoverArgs>();
  auto* switchover =
      app.add_subcommand("switchover", "Hand the primary role to a replica (planned, no data loss)");
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
}

}  // namespace pgwarden::cli
