#include "proxy/etcd_feed.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "cluster/cluster_store.h"
#include "cluster/conn_url.h"
#include "config/dynamic_config.h"

namespace pgwarden::proxy {

std::optional<Endpoint> EndpointOfConnUrl(const std::string& conn_url) {
  auto address = cluster::ParseConnUrl(conn_url);
  if (!address || !address->port) return std::nullopt;  // a port is never guessed
  return Endpoint{address->host, *address->port};
}

namespace {

uint64_t LagOf(const core::ClusterView& view, const core::Member& m) {
  if (!view.status) return 0;
  uint64_t pos = std::max(m.received_lsn.value(), m.replayed_lsn.value());
  uint64_t ref = view.status->optime.value();
  return ref > pos ? ref - pos : 0;
}

bool RunningReplica(const core::Member& m) {
  return m.role == core::MemberRole::kReplica && m.state == core::PgState::kRunning;
}

}  // namespace

bool SwitchoverPending(const core::ClusterView& view) {
  if (!view.failover || !view.leader || view.failover->scheduled_at) return false;
  const core::FailoverRequest& f = *view.failover;
  if (f.leader) return *f.leader == view.leader->holder;
  return f.candidate && *f.candidate != view.leader->holder;
}

Topology BuildTopology(const core::ClusterView& view, uint64_t generation,
                       bool hold_for_switchover) {
  Topology t;
  t.generation = generation;
  const core::Member* leader = view.leader ? view.FindMember(view.leader->holder) : nullptr;
  if (leader != nullptr && leader->role == core::MemberRole::kPrimary &&
      leader->state == core::PgState::kRunning &&
      !(hold_for_switchover && SwitchoverPending(view))) {
    if (auto ep = EndpointOfConnUrl(leader->conn_url)) {
      t.primary = Backend{leader->name, *ep, 0, leader->tags.noloadbalance};
    }
  }
  for (const auto& [name, m] : view.members) {
    if (leader != nullptr && name == leader->name) continue;
    if (!RunningReplica(m)) continue;
    auto ep = EndpointOfConnUrl(m.conn_url);
    if (!ep) continue;
    Backend b{name, *ep, LagOf(view, m), m.tags.noloadbalance};
    bool sync = view.sync &&
                std::find(view.sync->sync_standby.begin(), view.sync->sync_standby.end(), name) !=
                    view.sync->sync_standby.end();
    (sync ? t.sync_replicas : t.async_replicas).push_back(std::move(b));
  }
  return t;
}

std::optional<std::chrono::seconds> TtlOfView(const core::ClusterView& view) {
  if (!view.config_json) return std::nullopt;
  auto loaded = config::DynamicConfigFromJson(*view.config_json, "etcd config");
  if (!loaded) return std::nullopt;
  return loaded->config.ttl;
}

EtcdFeed::EtcdFeed(EtcdFeedOptions options, dcs::Dcs& read_dcs, dcs::Dcs& contact_dcs,
                   dcs::Dcs& watch_dcs, TopologySink sink)
    : options_(std::move(options)),
      read_dcs_(read_dcs),
      contact_dcs_(contact_dcs),
      watch_dcs_(watch_dcs),
      sink_(std::move(sink)) {
  cluster::Keys keys(options_.name_space, options_.scope);
  prefix_ = keys.prefix;
  leader_key_ = keys.leader;
}

EtcdFeed::~EtcdFeed() { Stop(); }

void EtcdFeed::Start() {
  watch_thread_ = std::thread([this] { WatchLoop(); });
  contact_thread_ = std::thread([this] { ContactLoop(); });
}

void EtcdFeed::Stop() {
  stop_ = true;
  {
    std::lock_guard lock(mu_);
    if (watch_) watch_->Cancel();
  }
  cv_.notify_all();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (contact_thread_.joinable()) contact_thread_.join();
}

std::optional<std::chrono::seconds> EtcdFeed::LastTtl() const {
  std::lock_guard lock(mu_);
  return ttl_;
}

bool EtcdFeed::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_.load(); });
  return !stop_;
}

namespace {

std::string Describe(const Topology& t) {
  std::string out = "primary ";
  out += t.primary ? t.primary->name.str() + " (" + t.primary->endpoint.ToString() + ")" : "none";
  auto list = [](const std::vector<Backend>& v) {
    std::string s;
    for (const Backend& b : v) s += (s.empty() ? "" : ",") + b.name.str();
    return s.empty() ? std::string("-") : s;
  };
  return out + ", sync " + list(t.sync_replicas) + ", async " + list(t.async_replicas);
}

bool SameTopology(const Topology& a, const Topology& b) {
  return a.primary == b.primary && a.sync_replicas == b.sync_replicas &&
         a.async_replicas == b.async_replicas;
}

bool SameRoles(const Topology& a, const Topology& b) {
  auto names = [](const std::vector<Backend>& v) {
    std::vector<std::string> n;
    for (const Backend& x : v) n.push_back(x.name.str() + "@" + x.endpoint.ToString());
    return n;
  };
  return PrimaryChanged(a.primary, b.primary) == false &&
         names(a.sync_replicas) == names(b.sync_replicas) &&
         names(a.async_replicas) == names(b.async_replicas);
}

}  // namespace

dcs::Revision EtcdFeed::ReadAndPublish() {
  std::lock_guard publish(publish_mu_);
  cluster::ClusterStore store(read_dcs_, cluster::Keys(options_.name_space, options_.scope));
  auto read = store.Read();
  if (!read) {
    spdlog::debug("reading the cluster: {}", read.error().ToString());
    return 0;
  }
  if (sink_.report_contact) sink_.report_contact();
  for (const Error& e : read->problems) spdlog::warn("etcd: {}", e.ToString());
  const core::ClusterView& view = read->view;
  if (auto ttl = TtlOfView(view)) {
    std::lock_guard lock(mu_);
    ttl_ = ttl;
  }
  if (view.revision < published_revision_) return published_revision_;  // an older answer
  published_revision_ = view.revision;
  bool hold = false;
  if (options_.switchover_hold.count() > 0 && SwitchoverPending(view)) {
    const auto now = std::chrono::steady_clock::now();
    if (!switchover_seen_ || switchover_seen_->first != view.failover->mod_revision) {
      switchover_seen_ = std::make_pair(view.failover->mod_revision, now);
      spdlog::info(
          "switchover requested from {}: primary-port clients are held until the new "
          "primary runs (at most {} ms)",
          view.leader->holder.str(), options_.switchover_hold.count());
    }
    hold = now - switchover_seen_->second < options_.switchover_hold;
  } else {
    switchover_seen_.reset();
  }
  hiding_for_switchover_ = hold;
  Topology t = BuildTopology(view, 0, hold);
  published_leader_ = view.leader;
  if (published_ && SameTopology(*published_, t)) return view.revision;
  bool roles_changed = !published_ || !SameRoles(*published_, t);
  if (roles_changed) {
    std::string why;
    if (!t.primary && view.leader) {
      const core::Member* m = view.FindMember(view.leader->holder);
      why = m == nullptr ? " (leader " + view.leader->holder.str() + " has no member key)"
                         : " (leader " + view.leader->holder.str() + " is not a running primary)";
    } else if (!view.leader) {
      why = " (no leader key)";
    }
    spdlog::info("topology at revision {}: {}{}", view.revision, Describe(t), why);
  }
  published_ = t;
  t.generation = ++generation_;
  if (sink_.set_topology) sink_.set_topology(std::make_shared<const Topology>(std::move(t)));
  return view.revision;
}

void EtcdFeed::WatchLoop() {
  while (!stop_) {
    dcs::Revision rev = ReadAndPublish();
    if (rev == 0) {
      if (!SleepFor(options_.retry_interval)) break;
      continue;
    }
    {
      auto w = watch_dcs_.WatchPrefix(prefix_, rev + 1);
      std::lock_guard lock(mu_);
      watch_ = std::move(w);
      if (stop_) break;
    }
    while (!stop_) {
      auto batch = watch_->Next(std::chrono::seconds(1));
      if (!batch) {
        if (batch.error().code == ErrorCode::kCompacted) {
          spdlog::info("watch: history compacted; reading the cluster again");
          break;
        }
        if (batch.error().code == ErrorCode::kCancelled) break;
        spdlog::debug("watch: {}", batch.error().ToString());
        if (!SleepFor(options_.retry_interval)) break;
        continue;
      }
      if (batch->events.empty()) continue;
      if (sink_.report_contact) sink_.report_contact();
      ReadAndPublish();
    }
    std::lock_guard lock(mu_);
    watch_.reset();
  }
  std::lock_guard lock(mu_);
  watch_.reset();
}

void EtcdFeed::ContactLoop() {
  while (SleepFor(options_.contact_interval)) {
    auto got = contact_dcs_.Get(leader_key_);
    if (!got) {
      spdlog::debug("etcd contact read: {}", got.error().ToString());
      continue;
    }
    if (sink_.report_contact) sink_.report_contact();
    // A switchover request that hid the primary for too long stops doing so.
    if (hiding_for_switchover_) {
      bool expired = false;
      {
        std::lock_guard publish(publish_mu_);
        if (switchover_seen_ && std::chrono::steady_clock::now() - switchover_seen_->second >=
                                    options_.switchover_hold) {
          expired = true;
          spdlog::warn("switchover request still pending after {} ms: routing to {} again",
                       options_.switchover_hold.count(),
                       published_leader_ ? published_leader_->holder.str() : std::string("-"));
        }
      }
      if (expired) {
        ReadAndPublish();
        continue;
      }
    }
    // A leader key that differs from the published view means the watch missed or has not yet
    // delivered a change: read everything again rather than wait.
    bool differs;
    {
      std::lock_guard publish(publish_mu_);
      const dcs::KeyValue* kv = got->kvs.empty() ? nullptr : &got->kvs.front();
      differs = (kv == nullptr) != !published_leader_.has_value() ||
                (kv != nullptr && (kv->value != published_leader_->holder.str() ||
                                   kv->mod_revision != published_leader_->mod_revision));
    }
    if (differs) ReadAndPublish();
  }
}

}  // namespace pgwarden::proxy
