#include "sim/fake_postgres.h"

#include <algorithm>

namespace pgwarden::sim {

uint64_t FakePostgres::BranchAt(uint64_t pos) const {
  uint64_t branch = 0;
  for (const Segment& s : lineage) {
    if (s.start < pos) branch = s.branch;
  }
  return branch;
}

bool FakePostgres::IsPrefixOf(const FakePostgres& other) const {
  if (!has_data || !other.has_data || sysid != other.sysid) return false;
  if (lsn > other.lsn) return false;
  // Branches are constant between segment starts: compare at 1 and just after every start.
  std::vector<uint64_t> points{1};
  for (const Segment& s : lineage) points.push_back(s.start + 1);
  for (const Segment& s : other.lineage) points.push_back(s.start + 1);
  for (uint64_t p : points) {
    if (p <= lsn && BranchAt(p) != other.BranchAt(p)) return false;
  }
  return true;
}

void FakePostgres::CopyWalFrom(const FakePostgres& other, uint64_t new_lsn) {
  lineage.clear();
  for (const Segment& s : other.lineage) {
    if (lineage.empty() || s.start < new_lsn) lineage.push_back(s);
  }
  lsn = new_lsn;
  sysid = other.sysid;
  has_data = true;
}

core::LocalPostgres FakePostgres::Observe() const {
  core::LocalPostgres pg;
  pg.data_dir = !has_data           ? core::DataDirState::kEmpty
                : bootstrap_pending ? core::DataDirState::kBootstrapPending
                                    : core::DataDirState::kInitialized;
  pg.system_identifier = sysid;
  pg.state = state;
  pg.role = primary ? core::PgRole::kPrimary : core::PgRole::kReplica;
  pg.timeline = pgwarden::Timeline(Timeline());
  if (primary) {
    pg.write_lsn = Lsn(lsn);
  } else {
    pg.received_lsn = Lsn(lsn);
    pg.replayed_lsn = Lsn(lsn);
    pg.write_lsn = Lsn(lsn);
  }
  if (!lineage.empty()) pg.timeline_start_lsn = Lsn(lineage.back().start);
  pg.upstream = upstream;
  if (primary) {
    pg.flush_lsn = Lsn(lsn);
    pg.sync_standby_names = sync_names;
  }
  return pg;
}

std::string FakePostgres::Describe() const {
  static const char* kStates[] = {"stopped", "starting", "running", "stopping", "crashed"};
  std::string s = has_data ? (bootstrap_pending ? "pending" : "data") : "empty";
  s += std::string(" ") + kStates[static_cast<int>(state)];
  s += primary ? " primary" : " replica";
  s += " tl" + std::to_string(Timeline()) + " lsn=" + std::to_string(lsn);
  if (upstream) s += " up=" + upstream->str();
  if (op) s += " op=" + core::Describe(op->action);
  return s;
}

}  // namespace pgwarden::sim
