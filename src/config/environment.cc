// Patroni's PATRONI_* environment variables, applied over the file's values before reading.
#include "config/environment.h"

#include <string_view>
#include <utility>

extern char** environ;  // NOLINT: POSIX

namespace pgwarden::config {
namespace internal {
namespace {

// Variable suffix (after "PATRONI_") -> key path in the file.
struct Mapping {
  std::string_view variable;
  std::string_view path;
};

constexpr Mapping kMappings[] = {
    {"NAME", "name"},
    {"NAMESPACE", "namespace"},
    {"SCOPE", "scope"},
    {"LOG_LEVEL", "log.level"},
    {"LOG_DIR", "log.dir"},
    {"LOG_FILE_NUM", "log.file_num"},
    {"LOG_FILE_SIZE", "log.file_size"},
    {"RESTAPI_LISTEN", "restapi.listen"},
    {"RESTAPI_CONNECT_ADDRESS", "restapi.connect_address"},
    {"RESTAPI_USERNAME", "restapi.authentication.username"},
    {"RESTAPI_PASSWORD", "restapi.authentication.password"},
    {"RESTAPI_CERTFILE", "restapi.certfile"},
    {"RESTAPI_KEYFILE", "restapi.keyfile"},
    {"ETCD3_HOST", "etcd3.host"},
    {"ETCD3_HOSTS", "etcd3.hosts"},
    {"ETCD3_PROTOCOL", "etcd3.protocol"},
    {"ETCD3_USERNAME", "etcd3.username"},
    {"ETCD3_PASSWORD", "etcd3.password"},
    {"ETCD3_CACERT", "etcd3.cacert"},
    {"ETCD3_CERT", "etcd3.cert"},
    {"ETCD3_KEY", "etcd3.key"},
    {"POSTGRESQL_LISTEN", "postgresql.listen"},
    {"POSTGRESQL_CONNECT_ADDRESS", "postgresql.connect_address"},
    {"POSTGRESQL_DATA_DIR", "postgresql.data_dir"},
    {"POSTGRESQL_BIN_DIR", "postgresql.bin_dir"},
    {"POSTGRESQL_CONFIG_DIR", "postgresql.config_dir"},
    {"POSTGRESQL_PGPASS", "postgresql.pgpass"},
    {"SUPERUSER_USERNAME", "postgresql.authentication.superuser.username"},
    {"SUPERUSER_PASSWORD", "postgresql.authentication.superuser.password"},
    {"REPLICATION_USERNAME", "postgresql.authentication.replication.username"},
    {"REPLICATION_PASSWORD", "postgresql.authentication.replication.password"},
    {"REWIND_USERNAME", "postgresql.authentication.rewind.username"},
    {"REWIND_PASSWORD", "postgresql.authentication.rewind.password"},
};

// The map entry `key` of `map` (created, or turned into a map, as needed).
Node* Entry(Node* map, std::string_view key) {
  if (map->kind != Node::Kind::kMap) {
    *map = Node{};
    map->kind = Node::Kind::kMap;
  }
  for (MapEntry& e : map->entries) {
    if (e.key == key) return e.value.get();
  }
  MapEntry e;
  e.key = std::string(key);
  e.value = std::make_unique<Node>();
  map->entries.push_back(std::move(e));
  return map->entries.back().value.get();
}

Node Scalar(std::string text) {
  Node n;
  n.kind = Node::Kind::kScalar;
  n.scalar = std::move(text);
  n.quoted = true;
  return n;
}

// PATRONI_ETCD3_HOSTS: "'h1:2379','h2:2379'" (Patroni's form) or "h1:2379,h2:2379".
Node HostList(std::string_view text) {
  Node list;
  list.kind = Node::Kind::kSequence;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view part =
        text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\'' || part.front() == '"' ||
                             part.front() == '[')) {
      part.remove_prefix(1);
    }
    while (!part.empty() && (part.back() == ' ' || part.back() == '\'' || part.back() == '"' ||
                             part.back() == ']')) {
      part.remove_suffix(1);
    }
    if (!part.empty()) list.items.push_back(Scalar(std::string(part)));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return list;
}

}  // namespace

bool ApplyEnvironment(const Environment& env, Node* root, Diagnostics* diag) {
  bool applied = false;
  // `etcd:` in the file with PATRONI_ETCD3_* set would make both sections: put the values
  // where the file has its etcd settings.
  const bool file_uses_etcd_v2 = root->kind == Node::Kind::kMap && root->Find("etcd") != nullptr &&
                                 root->Find("etcd3") == nullptr;
  for (const Mapping& m : kMappings) {
    std::string name = "PATRONI_" + std::string(m.variable);
    auto it = env.find(name);
    if (it == env.end()) {
      // Patroni's v2 spelling, PATRONI_ETCD_*, stands for the same keys.
      if (m.variable.substr(0, 6) == "ETCD3_") {
        name = "PATRONI_ETCD_" + std::string(m.variable.substr(6));
        it = env.find(name);
      }
      if (it == env.end()) continue;
    }
    std::string path(m.path);
    if (file_uses_etcd_v2 && path.rfind("etcd3.", 0) == 0) path.erase(4, 1);  // "etcd."
    Node* node = root;
    size_t pos = 0;
    while (true) {
      size_t dot = path.find('.', pos);
      node = Entry(node, std::string_view(path).substr(
                             pos, dot == std::string::npos ? std::string::npos : dot - pos));
      if (dot == std::string::npos) break;
      pos = dot + 1;
    }
    *node = m.variable == "ETCD3_HOSTS" ? HostList(it->second) : Scalar(it->second);
    diag->SetOrigin(path, "$" + name);
    applied = true;
  }
  return applied;
}

}  // namespace internal

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.rfind("PATRONI_", 0) != 0) continue;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

}  // namespace pgwarden::config
