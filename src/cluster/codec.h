// The JSON values of the cluster's etcd keys, compatible with Patroni's where Patroni has the
// key (docs/ha-core.md, "etcd layout"). Decoders never throw: a malformed value is a kCorrupt
// error that names the key and what is wrong with it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "core/model.h"

namespace pgwarden::cluster {

// members/<name>: {"conn_url", "api_url", "state", "role", "timeline", "xlog_location",
// "received_lsn", "replayed_lsn", "current_lsn", "tags": {...}, "pending_restart": true (only
// when set, as Patroni)}. `scheduled_restart`: the agent's scheduled restart (a JSON object as
// text, api/restart_schedule.h), written as the key's "scheduled_restart" when given.
std::string EncodeMember(const core::Member& member,
                         const std::optional<std::string>& scheduled_restart = std::nullopt);
Result<core::Member> DecodeMember(const std::string& key, std::string_view name,
                                  std::string_view json);

// The "scheduled_restart" object of a members/<name> value (JSON text), if it has one; nullopt
// also when the value is not JSON (DecodeMember reports that).
std::optional<std::string> ScheduledRestartOfMember(std::string_view json);

// status: {"optime": <int>, "slots": {}}.
std::string EncodeStatus(const core::LeaderStatus& status);
Result<core::LeaderStatus> DecodeStatus(const std::string& key, std::string_view json);

// history: [[timeline, switch_lsn, reason, time, new_leader, old_leader?], ...].
std::string EncodeHistory(const std::vector<core::HistoryEntry>& history);
Result<std::vector<core::HistoryEntry>> DecodeHistory(const std::string& key,
                                                      std::string_view json);

// failover: {"leader": "...", "member": "...", "scheduled_at": "ISO 8601 with offset"}.
std::string EncodeFailover(const core::FailoverRequest& request);
Result<core::FailoverRequest> DecodeFailover(const std::string& key, std::string_view json);

// sync: {"leader": "...", "sync_standby": "a,b" | null}.
std::string EncodeSync(const core::SyncState& sync);
Result<core::SyncState> DecodeSync(const std::string& key, std::string_view json);

// "2026-11-26T01:02:03.250+00:00" (core::FormatIso8601's output), "...Z", "...+HH:MM",
// "...-HHMM"; fractional seconds optional. nullopt for anything else.
std::optional<SystemTime> ParseIso8601(std::string_view text);

}  // namespace pgwarden::cluster
