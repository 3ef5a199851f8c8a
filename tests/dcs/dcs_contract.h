// The Dcs contract suite: one set of cases that every Dcs implementation must pass, so the
// in-memory store stays honest about etcd's semantics. A test binary instantiates it with a
// factory of harnesses:
//   INSTANTIATE_TEST_SUITE_P(Memory, DcsContractTest, ::testing::Values(&MakeMemoryHarness));
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dcs/dcs.h"

namespace pgwarden::dcs::contract {

// One store under test, fresh or shared: cases use keys under prefix() only and compare
// revisions relative to the ones they observe.
class DcsHarness {
 public:
  virtual ~DcsHarness() = default;
  virtual Dcs& dcs() = 0;
  // A key prefix no other case uses ("/contract/<n>/").
  virtual std::string prefix() = 0;
  // Lets `d` pass for leases: advances a fake clock, or sleeps.
  virtual void Pass(Duration d) = 0;
  // How long after its TTL a lease's keys may still be there (a real etcd revokes
  // asynchronously; the in-memory store at once).
  virtual Duration expiry_slack() = 0;
};

using HarnessFactory = std::unique_ptr<DcsHarness> (*)();

class DcsContractTest : public ::testing::TestWithParam<HarnessFactory> {
 protected:
  void SetUp() override {
    harness_ = GetParam()();
    ASSERT_NE(harness_, nullptr);
    p_ = harness_->prefix();
  }
  Dcs& dcs() { return harness_->dcs(); }
  std::string Key(const std::string& name) const { return p_ + name; }

  std::unique_ptr<DcsHarness> harness_;
  std::string p_;
};

}  // namespace pgwarden::dcs::contract
