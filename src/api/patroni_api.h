// The Patroni-compatible REST API: health checks for load balancers (/primary, /replica, ...),
// the member status peers read during a leader race (/patroni), the cluster view (/cluster,
// /history, /config, /metrics) and the control endpoints (/switchover, /failover, /config,
// /restart, /reload, /reinitialize). docs/rest-api.md lists every endpoint and where pgwarden
// differs from Patroni.
//
// Data flow: the agent publishes an immutable ApiSnapshot after each HA turn (SetSnapshot, any
// thread); read requests are answered from the latest snapshot on the HTTP server thread and never
// block. Control requests are validated against the snapshot on the server thread (a bad request
// changes nothing and never reaches the agent), then handed to the agent's ControlPlane on the
// API's own worker thread, because a switchover waits for its outcome.
//
// This module defines its own snapshot model on purpose: it depends on common/ only, so the API,
// the agent and the core can evolve separately; the agent converts its state into ApiSnapshot.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_server.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/types.h"

namespace pgwarden::api {

// PostgreSQL state as the agent sees it; printed with Patroni's strings ("running",
// "creating replica", ...). The order is Patroni's `patroni_postgres_state` numbering.
enum class PgState {
  kInitdb,
  kInitdbFailed,
  kCustomBootstrap,
  kCustomBootstrapFailed,
  kCreatingReplica,
  kRunning,
  kStarting,
  kBootstrapStarting,
  kStartFailed,
  kRestarting,
  kRestartFailed,
  kStopping,
  kStopped,
  kStopFailed,
  kCrashed,
  kUnknown,  // not a Patroni state value: metric -1
};
std::string_view ToString(PgState state);

// The role of the local PostgreSQL ("primary", "replica", "standby_leader", "demoted",
// "uninitialized").
enum class PgRole { kUninitialized, kPrimary, kReplica, kStandbyLeader, kDemoted };
std::string_view ToString(PgRole role);

// One row of pg_stat_replication (on a primary, or a cascading replica).
struct ReplicationRow {
  std::string usename;
  std::string application_name;
  std::string client_addr;
  std::string state;       // "streaming", "catchup", ...
  std::string sync_state;  // "async", "sync", "potential", "quorum"
  int sync_priority = 0;
};

// Member tags. The four known ones are typed; any other tag is kept as text.
struct MemberTags {
  bool nofailover = false;
  bool noloadbalance = false;
  bool nosync = false;
  std::optional<int64_t> failover_priority;
  std::map<std::string, std::string> user;  // e.g. {"dc": "east"}

  bool empty() const {
    return !nofailover && !noloadbalance && !nosync && !failover_priority && user.empty();
  }
  // The value `?tag_<key>=` is compared with: "true"/"false" for booleans, the decimal number for
  // failover_priority, the text for user tags; nullopt when the tag is not set.
  std::optional<std::string> Lookup(const std::string& key) const;
};

// This member, as the agent last observed it.
struct LocalStatus {
  std::string name;               // member name
  std::string scope;              // cluster name
  std::string version = "0.1.0";  // pgwarden version, reported as patroni.version
  PgState state = PgState::kUnknown;
  PgRole role = PgRole::kUninitialized;
  // Whether the agent holds the leader lease *in its own view*: it renewed the lease less than
  // ttl ago (Patroni's ha.is_leader()). This, not "PostgreSQL is read-write", makes /primary 200.
  bool holds_leader_lock = false;
  int server_version = 0;  // e.g. 150004; 0 when unknown
  std::optional<SystemTime> postmaster_start_time;
  std::optional<Timeline> timeline;
  // Primary: the current (flush) WAL position.
  std::optional<Lsn> xlog_location;
  // Replica: last received and replayed positions, the commit time of the last replayed
  // transaction, and whether replay is paused.
  std::optional<Lsn> received_location;
  std::optional<Lsn> replayed_location;
  std::optional<SystemTime> replayed_timestamp;
  bool replay_paused = false;
  std::vector<ReplicationRow> replication;
  std::string replication_state;           // "streaming", "in archive recovery" or empty
  std::string database_system_identifier;  // empty when unknown
  bool pending_restart = false;
  // The `scheduled_restart` object (a JSON object as text, api/restart_schedule.h) while a
  // restart is scheduled on this member.
  std::optional<std::string> scheduled_restart;
  MemberTags tags;
  int64_t dcs_last_seen = 0;  // unix seconds of the last successful DCS exchange; 0: never
};

// A member of the cluster as the DCS lists it (its member key).
struct ClusterMember {
  std::string name;
  std::string state;              // member key "state": "running", "stopped", ...
  std::string replication_state;  // "streaming", "in archive recovery" or empty
  std::string host;               // PostgreSQL host from conn_url; empty when unknown
  std::optional<uint16_t> port;
  std::string api_url;  // "http://10.0.0.1:8008/patroni"
  std::optional<Timeline> timeline;
  std::optional<Lsn> lsn;          // the member's reported WAL position
  std::optional<Lsn> receive_lsn;  // replicas: received position, if reported
  std::optional<Lsn> replay_lsn;   // replicas: replayed position, if reported
  bool pending_restart = false;
  // The member key's "scheduled_restart" object (JSON text), if it has one.
  std::optional<std::string> scheduled_restart;
  MemberTags tags;
};

struct ScheduledSwitchover {
  std::string at;    // ISO 8601 with time zone, as stored in the failover key
  std::string from;  // leader; empty when not given
  std::string to;    // candidate; empty when not given
};

// One line of the cluster history key: [timeline, lsn, reason, timestamp, new_leader].
struct HistoryEntry {
  uint32_t timeline = 0;
  uint64_t lsn = 0;
  std::string reason;
  std::string timestamp;   // ISO 8601; empty when unknown
  std::string new_leader;  // empty when unknown
};

// The cluster as last read from the DCS.
struct ClusterView {
  std::optional<std::string> leader;  // holder of the leader key; nullopt: unlocked
  std::vector<ClusterMember> members;
  bool synchronous_mode = false;
  std::vector<std::string> sync_standbys;  // names in the /sync key
  int sync_quorum = 0;  // the /sync key's `quorum` (Patroni 4); > 0: the names are a quorum set
  bool standby_cluster = false;
  std::optional<Lsn> leader_lsn;  // the leader's last published WAL position (/status optime)
  std::optional<ScheduledSwitchover> scheduled_switchover;
  std::vector<HistoryEntry> history;
  std::optional<std::string> config_json;  // dynamic config (a JSON object); nullopt: none
};

// Everything the API serves. Immutable once published.
struct ApiSnapshot {
  LocalStatus self;
  std::optional<ClusterView> cluster;  // nullopt: no DCS view (etcd unreachable)
  bool pause = false;                  // maintenance mode
  Duration ttl = std::chrono::seconds(30);
  std::optional<SteadyTime> last_ha_loop;  // when the last HA turn finished
  uint64_t maximum_lag_on_failover = 1024 * 1024;

  // Derived: listed in /sync while synchronous mode is on and running as a replica.
  bool IsSyncStandby() const;
  // Derived: a sync standby of a quorum set (the /sync key's quorum > 0): Patroni 4's
  // `quorum_standby` (`GET /quorum`, role in /cluster, "Quorum Standby" in `pgwarden list`).
  bool IsQuorumStandby() const;
  // Derived: no leader key (or no DCS view at all).
  bool ClusterUnlocked() const;
};

struct SwitchoverRequest {
  std::string leader;                    // the current leader (checked against the snapshot)
  std::optional<std::string> candidate;  // nullopt: any healthy member
  std::optional<SystemTime> scheduled_at;
  std::string scheduled_at_text;  // as given, when scheduled
};

struct RestartRequest {
  std::optional<SystemTime> schedule;
  std::string schedule_text;
  std::optional<PgRole> role;                   // restart only if our role is this one
  std::optional<std::string> postgres_version;  // restart only if our version is lower
  std::optional<std::chrono::seconds> timeout;  // start timeout
  bool restart_pending = false;                 // restart only if a restart is pending
};

// What the agent does on behalf of the control endpoints. Implemented by the agent.
//
// Thread-safety: called on the API's single worker thread, one call at a time, never on the HTTP
// server thread; a call may block (a switchover waits for its outcome) but must return within
// its own bounded time. Requests reach it only after validation against the snapshot.
//
// Error codes are mapped to HTTP statuses: kConflict (the DCS said no: a compare failed, another
// operation is scheduled, no good candidate) -> 412 for switchover/failover, 409 elsewhere;
// kUnavailable / kFailed / kCancelled -> 503; kTimeout -> 503 "... status unknown";
// kInvalidArgument -> 400; kNotFound -> 404 (503 for PATCH /config: no config to patch).
// Messages reach the client verbatim.
class ControlPlane {
 public:
  virtual ~ControlPlane() = default;

  // Writes the switchover request. Scheduled: returns once written (202). Immediate: waits for
  // the outcome and returns e.g. `Successfully switched over to "n2"` (200).
  virtual Result<std::string> RequestSwitchover(const SwitchoverRequest& request) = 0;
  // Manual failover to `candidate` (works without a leader). Waits for the outcome.
  virtual Result<std::string> RequestFailover(const std::string& candidate) = 0;
  // Removes a scheduled switchover. kNotFound when none is scheduled.
  virtual Result<void> CancelScheduledSwitchover() = 0;
  // Merges a JSON object into the dynamic config (null deletes a key); returns the new config.
  virtual Result<std::string> PatchConfig(const std::string& patch_json) = 0;
  // Replaces the dynamic config; returns it.
  virtual Result<std::string> ReplaceConfig(const std::string& config_json) = 0;
  // Restarts PostgreSQL now (returns a message, 200) or schedules it (202).
  virtual Result<std::string> Restart(const RestartRequest& request) = 0;
  // Removes a scheduled restart. kNotFound when none is scheduled.
  virtual Result<void> CancelScheduledRestart() = 0;
  // Re-reads the configuration file (asynchronously).
  virtual Result<void> Reload() = 0;
  // Wipes and re-clones this replica. kFailed / kConflict with the reason when refused.
  virtual Result<void> Reinitialize(bool force, bool from_leader) = 0;
};

// Parses a lag limit as Patroni does: bytes ("1048576") or a number with a unit B, kB, MB, GB,
// TB (1024-based, case-sensitive: "16kB", "10MB", "1GB"). nullopt on anything else.
std::optional<uint64_t> ParseByteSize(std::string_view text);

// Parses an ISO 8601 timestamp "YYYY-MM-DD[T| ]HH:MM[:SS[.fff]]" followed by a zone: "Z",
// "+HH", "+HHMM" or "+HH:MM". kInvalidArgument "no time zone" when the zone is missing,
// kCorrupt when the text cannot be parsed.
Result<SystemTime> ParseTimestamp(std::string_view text);

// Formats like PostgreSQL/Python print a timestamptz in UTC: "2024-08-28 19:39:26.352526+00:00".
std::string FormatTimestamp(SystemTime t);

class PatroniApi {
 public:
  // `control` may be null (control endpoints then answer 503); it must outlive this object.
  // `clock` drives /liveness and the "scheduled in the past" check.
  explicit PatroniApi(ControlPlane* control, const Clock& clock = RealClock::Instance());
  ~PatroniApi();  // finishes the running control call, answers queued ones 503
  PatroniApi(const PatroniApi&) = delete;
  PatroniApi& operator=(const PatroniApi&) = delete;

  // Publishes a new snapshot; any thread. Requests in flight keep the one they started with.
  void SetSnapshot(std::shared_ptr<const ApiSnapshot> snapshot);
  std::shared_ptr<const ApiSnapshot> snapshot() const;

  // Answers one request: reads right away, control requests later from the worker thread.
  void Handle(HttpRequest request, HttpResponder respond);
  // A handler for HttpServer bound to this object (stop the server before destroying this).
  AsyncHttpHandler Handler();

  // Answers a read request (GET/HEAD/OPTIONS) from the current snapshot. Exposed for tests.
  HttpResponse HandleRead(const HttpRequest& request) const;

  class Worker;  // the control worker thread, defined in patroni_api.cc

 private:
  void HandleControl(HttpRequest request, HttpResponder respond);

  ControlPlane* control_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::shared_ptr<const ApiSnapshot> snapshot_;
  std::unique_ptr<Worker> worker_;
};

}  // namespace pgwarden::api
