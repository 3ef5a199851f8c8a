#include "dcs/dcs.h"

#include <utility>

namespace pgwarden::dcs {

Compare Compare::ValueEquals(std::string key, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.op = Op::kEqual;
  c.value = std::move(value);
  return c;
}

Compare Compare::Absent(std::string key) { return CreateRevisionEquals(std::move(key), 0); }

Compare Compare::ModRevisionEquals(std::string key, Revision rev) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kModRevision;
  c.op = Op::kEqual;
  c.number = rev;
  return c;
}

Compare Compare::CreateRevisionEquals(std::string key, Revision rev) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kCreateRevision;
  c.op = Op::kEqual;
  c.number = rev;
  return c;
}

}  // namespace pgwarden::dcs
