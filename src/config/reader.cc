#include "config/reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "config/units.h"

namespace pgwarden::config::internal {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal string alignment distance: edits, with a swap of neighbours counted as one.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

bool PathIsUnder(const std::string& path, const std::string& parent) {
  if (path == parent) return true;
  if (parent.empty()) return true;
  return path.size() > parent.size() && path.compare(0, parent.size(), parent) == 0 &&
         (path[parent.size()] == '.' || path[parent.size()] == '[');
}

std::string Parent(const std::string& path) {
  size_t cut = path.find_last_of(".[");
  if (cut == std::string::npos) return "";
  return path.substr(0, cut);
}

bool MarkLess(const Diagnostic& a, const Diagnostic& b) {
  if (a.mark.line != b.mark.line) return a.mark.line < b.mark.line;
  return a.mark.column < b.mark.column;
}

}  // namespace

// ---- Diagnostics ------------------------------------------------------------------------

void Diagnostics::Error(Mark mark, std::string path, std::string message) {
  error_paths_.insert(path);
  errors_.push_back(Diagnostic{mark, std::move(path), std::move(message)});
}

void Diagnostics::Warning(Mark mark, std::string path, std::string message) {
  warnings_.push_back(Diagnostic{mark, std::move(path), std::move(message)});
}

void Diagnostics::Unimplemented(Mark mark, std::string path) {
  unimplemented_.push_back(Diagnostic{mark, std::move(path), ""});
}

Mark Diagnostics::MarkOf(const std::string& path) const {
  std::string p = path;
  while (!p.empty()) {
    auto it = marks_.find(p);
    if (it != marks_.end() && it->second.known()) return it->second;
    p = Parent(p);
  }
  return root_mark_;
}

bool Diagnostics::HasErrorAt(const std::string& path) const {
  for (const std::string& e : error_paths_) {
    if (PathIsUnder(path, e) && !e.empty()) return true;
  }
  return false;
}

void Diagnostics::AddProblems(const std::vector<ConfigProblem>& problems, std::string_view prefix) {
  for (const ConfigProblem& p : problems) {
    std::string path = std::string(prefix) + p.path;
    if (HasErrorAt(path)) continue;
    Error(MarkOf(path), path, p.message);
  }
}

std::string Diagnostics::Format(const Diagnostic& d) const {
  std::string out = source_;
  for (std::string p = d.path; !p.empty(); p = Parent(p)) {
    auto it = origins_.find(p);
    if (it != origins_.end())
      return out + ": " + d.path + " (from " + it->second + "): " + d.message;
  }
  if (d.mark.known()) {
    out += ":" + std::to_string(d.mark.line) + ":" + std::to_string(d.mark.column);
  }
  out += ": ";
  if (!d.path.empty()) out += d.path + ": ";
  out += d.message;
  return out;
}

std::vector<std::string> Diagnostics::FormattedErrors() const {
  std::vector<Diagnostic> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(), MarkLess);
  std::vector<std::string> out;
  for (const Diagnostic& d : sorted) out.push_back(Format(d));
  return out;
}

std::vector<std::string> Diagnostics::FormattedWarnings() const {
  std::vector<Diagnostic> sorted = warnings_;
  std::stable_sort(sorted.begin(), sorted.end(), MarkLess);
  std::vector<std::string> out;
  for (const Diagnostic& d : sorted) out.push_back(Format(d));
  if (!unimplemented_.empty()) {
    std::vector<Diagnostic> keys = unimplemented_;
    std::stable_sort(keys.begin(), keys.end(), MarkLess);
    std::string line = source_ + ": accepted but not implemented by pgwarden yet, so ignored: ";
    std::set<std::string> seen;
    for (const Diagnostic& d : keys) {
      if (!seen.insert(d.path).second) continue;
      if (seen.size() > 1) line += ", ";
      line += "`" + d.path + "`";
      if (d.mark.known()) line += " (line " + std::to_string(d.mark.line) + ")";
    }
    out.push_back(line);
  }
  return out;
}

// ---- MapReader --------------------------------------------------------------------------

MapReader::MapReader(Diagnostics& diag, const Node* node, std::string path, Mark key_mark,
                     UnknownKeys unknown)
    : diag_(diag), node_(node), path_(std::move(path)), mark_(key_mark), unknown_(unknown) {
  if (node_ != nullptr && node_->kind == Node::Kind::kNull) node_ = nullptr;
  if (node_ == nullptr) return;
  if (!mark_.known()) mark_ = node_->mark;
  if (node_->kind != Node::Kind::kMap) {
    diag_.Error(node_->mark, path_.empty() ? "(top level)" : path_,
                "expected a map of settings (`key: value` lines), got " +
                    std::string(KindName(node_->kind)));
    node_ = nullptr;
    return;
  }
  for (size_t i = 0; i < node_->entries.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (node_->entries[i].key == node_->entries[j].key) {
        std::string first =
            node_->entries[j].key_mark.known()
                ? " (first given at line " + std::to_string(node_->entries[j].key_mark.line) + ")"
                : "";
        diag_.Error(node_->entries[i].key_mark, PathOf(node_->entries[i].key),
                    "duplicate key" + first);
        break;
      }
    }
  }
}

bool MapReader::Has(std::string_view key) const {
  return node_ != nullptr && node_->Find(key) != nullptr;
}

std::string MapReader::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

Mark MapReader::KeyMark(std::string_view key) const {
  if (node_ == nullptr) return mark_;
  const MapEntry* e = node_->Find(key);
  return e != nullptr ? e->key_mark : mark_;
}

const Node* MapReader::Get(std::string_view key) {
  known_.insert(std::string(key));
  if (node_ == nullptr) return nullptr;
  const MapEntry* e = node_->Find(key);
  if (e == nullptr) return nullptr;
  diag_.RecordMark(PathOf(key), e->key_mark);
  if (e->value->kind == Node::Kind::kNull) return nullptr;
  return e->value.get();
}

std::optional<std::string> MapReader::AsString(Diagnostics& diag, const Node& n,
                                               const std::string& path) {
  if (n.kind == Node::Kind::kScalar) return n.scalar;
  diag.Error(n.mark, path, "expected a single value (text), got " + std::string(KindName(n.kind)));
  return std::nullopt;
}

std::optional<bool> MapReader::AsBool(Diagnostics& diag, const Node& n, const std::string& path) {
  if (n.kind != Node::Kind::kScalar) {
    diag.Error(n.mark, path, "expected true or false, got " + std::string(KindName(n.kind)));
    return std::nullopt;
  }
  std::string v = Lower(n.scalar);
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  diag.Error(n.mark, path, "expected true or false, got `" + n.scalar + "`");
  return std::nullopt;
}

bool MapReader::String(std::string_view key, std::string* out) {
  const Node* n = Get(key);
  if (n == nullptr) return false;
  std::optional<std::string> v = AsString(diag_, *n, PathOf(key));
  if (!v) return false;
  *out = std::move(*v);
  return true;
}

bool MapReader::String(std::string_view key, std::optional<std::string>* out) {
  std::string v;
  if (!String(key, &v)) return false;
  *out = std::move(v);
  return true;
}

bool MapReader::Bool(std::string_view key, bool* out) {
  const Node* n = Get(key);
  if (n == nullptr) return false;
  std::optional<bool> v = AsBool(diag_, *n, PathOf(key));
  if (!v) return false;
  *out = *v;
  return true;
}

bool MapReader::Bool(std::string_view key, std::optional<bool>* out) {
  bool v = false;
  if (!Bool(key, &v)) return false;
  *out = v;
  return true;
}

bool MapReader::Int(std::string_view key, int64_t min, int64_t max, int64_t* out) {
  const Node* n = Get(key);
  if (n == nullptr) return false;
  std::optional<std::string> text = AsString(diag_, *n, PathOf(key));
  if (!text) return false;
  int64_t v = 0;
  const char* begin = text->data();
  const char* end = begin + text->size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec == std::errc::result_out_of_range) {
    diag_.Error(n->mark, PathOf(key), "`" + *text + "` is out of range");
    return false;
  }
  if (ec != std::errc() || ptr != end) {
    diag_.Error(n->mark, PathOf(key), "expected an integer, got `" + *text + "`");
    return false;
  }
  if (v < min || v > max) {
    std::string range =
        max == std::numeric_limits<int64_t>::max()
            ? "must be at least " + std::to_string(min)
            : "must be between " + std::to_string(min) + " and " + std::to_string(max);
    diag_.Error(n->mark, PathOf(key), range + ", got " + std::to_string(v));
    return false;
  }
  *out = v;
  return true;
}

bool MapReader::Duration(std::string_view key, std::chrono::milliseconds* out) {
  const Node* n = Get(key);
  if (n == nullptr) return false;
  if (n->kind != Node::Kind::kScalar) {
    diag_.Error(n->mark, PathOf(key),
                "expected a duration (seconds, or a string such as `500ms`), got " +
                    std::string(KindName(n->kind)));
    return false;
  }
  Result<std::chrono::milliseconds> d = ParseDuration(n->scalar);
  if (!d) {
    diag_.Error(n->mark, PathOf(key), d.error().message);
    return false;
  }
  *out = *d;
  return true;
}

bool MapReader::Duration(std::string_view key, std::optional<std::chrono::milliseconds>* out) {
  std::chrono::milliseconds v{};
  if (!Duration(key, &v)) return false;
  *out = v;
  return true;
}

bool MapReader::ByteSize(std::string_view key, uint64_t* out) {
  const Node* n = Get(key);
  if (n == nullptr) return false;
  std::optional<std::string> text = AsString(diag_, *n, PathOf(key));
  if (!text) return false;
  Result<uint64_t> v = ParseByteSize(*text);
  if (!v) {
    diag_.Error(n->mark, PathOf(key), v.error().message);
    return false;
  }
  *out = *v;
  return true;
}

bool MapReader::StringList(std::string_view key, std::vector<std::string>* out) {
  const Node* n = Get(key);
  if (n == nullptr) return false;
  if (n->kind != Node::Kind::kSequence) {
    diag_.Error(n->mark, PathOf(key),
                "expected a list (`- item` lines), got " + std::string(KindName(n->kind)));
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  for (size_t i = 0; i < n->items.size(); ++i) {
    std::string item_path = PathOf(key) + "[" + std::to_string(i) + "]";
    std::optional<std::string> v = AsString(diag_, n->items[i], item_path);
    if (v) {
      values.push_back(std::move(*v));
    } else {
      ok = false;
    }
  }
  if (!ok) return false;
  *out = std::move(values);
  return true;
}

bool MapReader::StringMap(std::string_view key, std::map<std::string, std::string>* out) {
  const Node* n = Get(key);
  if (n == nullptr) return false;
  MapReader child(diag_, n, PathOf(key), KeyMark(key), unknown_);
  if (!child.present()) return false;
  std::map<std::string, std::string> values;
  bool ok = true;
  for (const MapEntry& e : n->entries) {
    std::string item_path = child.PathOf(e.key);
    diag_.RecordMark(item_path, e.key_mark);
    if (e.value->kind == Node::Kind::kNull) {
      values[e.key] = "";
      continue;
    }
    std::optional<std::string> v = AsString(diag_, *e.value, item_path);
    if (v) {
      values[e.key] = std::move(*v);
    } else {
      ok = false;
    }
  }
  if (!ok) return false;
  *out = std::move(values);
  return true;
}

MapReader MapReader::Child(std::string_view key) {
  const Node* n = Get(key);
  return MapReader(diag_, n, PathOf(key), KeyMark(key), unknown_);
}

void MapReader::Unimplemented(std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) Unimplemented(key);
}

void MapReader::Unimplemented(std::string_view key) {
  known_.insert(std::string(key));
  if (node_ == nullptr) return;
  const MapEntry* e = node_->Find(key);
  if (e == nullptr) return;
  diag_.RecordMark(PathOf(key), e->key_mark);
  diag_.Unimplemented(e->key_mark, PathOf(key));
}

void MapReader::Finish() {
  if (node_ == nullptr) return;
  for (const MapEntry& e : node_->entries) {
    if (known_.count(e.key) != 0) continue;
    std::string message = "unknown key `" + PathOf(e.key) + "`";
    std::string suggestion = SuggestKey(e.key, known_);
    if (!suggestion.empty()) message += " (did you mean `" + suggestion + "`?)";
    if (unknown_ == UnknownKeys::kError) {
      diag_.Error(e.key_mark, PathOf(e.key), message);
    } else {
      diag_.Warning(e.key_mark, PathOf(e.key), message + "; ignored");
    }
    known_.insert(e.key);  // report once
  }
}

void WarnManagedParameters(MapReader& m, std::string_view key,
                           const std::map<std::string, std::string>& params) {
  for (const char* managed : {"listen_addresses", "port"}) {
    if (params.count(managed) == 0) continue;
    std::string path = m.PathOf(key) + "." + managed;
    m.diag().Warning(m.diag().MarkOf(path), path,
                     "ignored: pgwarden sets it from postgresql.listen");
  }
}

std::string SuggestKey(std::string_view word, const std::set<std::string>& candidates) {
  std::string w = Lower(word);
  size_t limit = w.size() <= 4 ? 1 : (w.size() <= 9 ? 2 : 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(w, Lower(c));
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace pgwarden::config::internal
