// Internal to the config module: typed reading of the tree (tree.h) section by section, every
// problem collected rather than thrown, and the bookkeeping that turns a key path into a
// "<file>:<line>:<col>" position for messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/dynamic_config.h"
#include "config/tree.h"

namespace pgwarden::config::internal {

struct Diagnostic {
  Mark mark;
  std::string path;
  std::string message;
};

// Collects errors, warnings and the unimplemented keys seen while reading one document.
class Diagnostics {
 public:
  explicit Diagnostics(std::string source, Mark root_mark = Mark{})
      : source_(std::move(source)), root_mark_(root_mark) {}

  void Error(Mark mark, std::string path, std::string message);
  void Warning(Mark mark, std::string path, std::string message);
  void Unimplemented(Mark mark, std::string path);

  // Marks a key path as set from outside the file (an environment variable): messages about
  // it name `origin` instead of a line.
  void SetOrigin(const std::string& path, std::string origin) {
    origins_[path] = std::move(origin);
  }
  // Remembers where a key path is in the document (its key's position).
  void RecordMark(const std::string& path, Mark mark) { marks_.emplace(path, mark); }
  // The recorded position of `path`, else of its nearest recorded parent, else the root's.
  Mark MarkOf(const std::string& path) const;
  // True when a reading error was reported at `path` or at one of its parents.
  bool HasErrorAt(const std::string& path) const;

  // Adds the semantic problems of Validate(): each gets the position of its key, and one that
  // repeats a reading error at the same path (or under it) is dropped.
  void AddProblems(const std::vector<ConfigProblem>& problems, std::string_view prefix = "");

  bool has_errors() const { return !errors_.empty(); }
  // "<source>:<line>:<col>: <path>: <message>", errors sorted by position.
  std::vector<std::string> FormattedErrors() const;
  // Warnings, then one line naming every unimplemented key.
  std::vector<std::string> FormattedWarnings() const;
  const std::string& source() const { return source_; }

 private:
  std::string Format(const Diagnostic& d) const;

  std::string source_;
  Mark root_mark_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  std::vector<Diagnostic> unimplemented_;
  std::map<std::string, Mark> marks_;
  std::map<std::string, std::string> origins_;
  std::set<std::string> error_paths_;
};

// Whether a key nobody knows is an error (YAML files: a typo must not pass) or a warning (the
// etcd `config` key: another tool may have written it).
enum class UnknownKeys { kError, kWarning };

// Reads one map. Every accessor names a key it knows (that is what "did you mean" draws on);
// Finish() then reports the keys of the map that no accessor asked for. A missing or null
// map reads as empty; a non-map value is reported once as a type error.
class MapReader {
 public:
  MapReader(Diagnostics& diag, const Node* node, std::string path, Mark key_mark,
            UnknownKeys unknown = UnknownKeys::kError);
  MapReader(const MapReader&) = delete;
  MapReader& operator=(const MapReader&) = delete;
  ~MapReader() = default;

  // True when the map exists in the document (even if empty).
  bool present() const { return node_ != nullptr; }
  bool Has(std::string_view key) const;
  const std::string& path() const { return path_; }
  std::string PathOf(std::string_view key) const;
  Mark mark() const { return mark_; }
  Diagnostics& diag() { return diag_; }

  // The value node for `key`, or nullptr when absent or null. Marks the key as known.
  const Node* Get(std::string_view key);
  Mark KeyMark(std::string_view key) const;

  // Typed readers: leave *out unchanged when the key is absent/null or its value is bad (the
  // problem is reported). Return true when a good value was stored.
  bool String(std::string_view key, std::string* out);
  bool String(std::string_view key, std::optional<std::string>* out);
  bool Bool(std::string_view key, bool* out);
  bool Bool(std::string_view key, std::optional<bool>* out);
  bool Int(std::string_view key, int64_t min, int64_t max, int64_t* out);
  bool Duration(std::string_view key, std::chrono::milliseconds* out);
  bool Duration(std::string_view key, std::optional<std::chrono::milliseconds>* out);
  bool ByteSize(std::string_view key, uint64_t* out);
  // A list of single values; a lone value is an error (say `- line`).
  bool StringList(std::string_view key, std::vector<std::string>* out);
  // A map of single values (GUCs, tags): values kept as their text.
  bool StringMap(std::string_view key, std::map<std::string, std::string>* out);

  // A nested map. The child must be Finish()ed by the caller.
  MapReader Child(std::string_view key);

  // Keys Patroni has and pgwarden does not implement yet: accepted, listed in one warning.
  void Unimplemented(std::initializer_list<std::string_view> keys);
  void Unimplemented(std::string_view key);
  // Marks a key as known without reading it (its reader is elsewhere).
  void Known(std::string_view key) { known_.insert(std::string(key)); }

  // Reports keys present in the map that no accessor named, with a "did you mean" suggestion.
  void Finish();

  // Value conversions shared with list readers; report at (mark, path) and return nullopt.
  static std::optional<std::string> AsString(Diagnostics& diag, const Node& n,
                                             const std::string& path);
  static std::optional<bool> AsBool(Diagnostics& diag, const Node& n, const std::string& path);

 private:
  Diagnostics& diag_;
  const Node* node_;  // nullptr: absent (or not a map)
  std::string path_;
  Mark mark_;
  UnknownKeys unknown_;
  std::set<std::string> known_;
};

// The closest of `candidates` to `word` when it is a plausible typo of it, else "".
std::string SuggestKey(std::string_view word, const std::set<std::string>& candidates);

// Warns about PostgreSQL parameters that pgwarden sets itself (listen_addresses and port come
// from postgresql.listen), read by `m.StringMap(key, ...)` into `params`.
void WarnManagedParameters(MapReader& m, std::string_view key,
                           const std::map<std::string, std::string>& params);

// Reads the dynamic settings (bootstrap.dcs or the etcd JSON) into *out.
void ReadDynamicConfig(MapReader& m, DynamicConfig* out);

}  // namespace pgwarden::config::internal
