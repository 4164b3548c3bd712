// docs/asyncapi.yaml stays whole: it is AsyncAPI 3.0.0, names the six topics, every $ref in
// it resolves (internal ones to a node of the document, file ones to a JSON Schema on disk),
// and the latest version of every schema in schemas/ is referenced by it.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kSourceDir{TASKSTREAM_SOURCE_DIR};
const fs::path kDocsDir = kSourceDir / "docs";
const fs::path kDocument = kDocsDir / "asyncapi.yaml";
const fs::path kSchemaDir = kSourceDir / "schemas";

YAML::Node load_document() { return YAML::LoadFile(kDocument.string()); }

/// The tokens of a JSON Pointer ("/a/b~1c" → a, b/c); `pointer` is empty or starts with '/'.
std::vector<std::string> pointer_tokens(const std::string& pointer) {
  std::vector<std::string> out;
  if (pointer.empty()) return out;
  std::size_t start = 1;
  for (;;) {
    const auto slash = pointer.find('/', start);
    std::string raw = pointer.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    std::string token;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && raw[i + 1] == '1') {
        token += '/';
        ++i;
      } else if (raw[i] == '~' && i + 1 < raw.size() && raw[i + 1] == '0') {
        token += '~';
        ++i;
      } else {
        token += raw[i];
      }
    }
    out.push_back(std::move(token));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

/// Whether tokens[i..] lead from `node` to an existing node. Recursion rather than a
/// cursor: assigning one YAML::Node to another would rewrite the document.
bool resolves(const YAML::Node& node, const std::vector<std::string>& tokens, std::size_t i) {
  if (i == tokens.size()) return node.IsDefined();
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      if (it->first.IsScalar() && it->first.Scalar() == tokens[i]) return resolves(it->second, tokens, i + 1);
    return false;
  }
  if (node.IsSequence()) {
    const auto& t = tokens[i];
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) return false;
    const auto index = static_cast<std::size_t>(std::stoul(t));
    if (index >= node.size()) return false;
    return resolves(node[index], tokens, i + 1);
  }
  return false;
}

struct Ref {
  std::string where;  ///< JSON Pointer of the object holding the $ref
  std::string value;
};

void collect_refs(const YAML::Node& node, const std::string& where, std::vector<Ref>& out) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
      if (key == "$ref") {
        out.push_back({where, it->second.IsScalar() ? it->second.Scalar() : std::string()});
        continue;
      }
      collect_refs(it->second, where + "/" + key, out);
    }
  } else if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) collect_refs(node[i], where + "/" + std::to_string(i), out);
  }
}

/// N of a file named "v<N>.schema.json" (N from 1, no leading zero), else 0.
int version_of(const std::string& name) {
  const std::string suffix = ".schema.json";
  if (name.size() <= 1 + suffix.size() || name[0] != 'v' || !name.ends_with(suffix)) return 0;
  const std::string digits = name.substr(1, name.size() - 1 - suffix.size());
  if (digits[0] == '0' || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoi(digits);
}

}  // namespace

TEST(AsyncApi, IsVersionThreeAndNamesTheSixTopics) {
  const YAML::Node doc = load_document();
  ASSERT_TRUE(doc.IsMap());
  ASSERT_TRUE(doc["asyncapi"].IsScalar());
  EXPECT_EQ(doc["asyncapi"].Scalar(), "3.0.0");

  const YAML::Node channels = doc["channels"];
  ASSERT_TRUE(channels.IsMap());
  std::set<std::string> addresses;
  for (auto it = channels.begin(); it != channels.end(); ++it) {
    const YAML::Node address = it->second["address"];
    if (address.IsScalar()) addresses.insert(address.Scalar());
  }
  for (const char* topic : {"task-events", "task-updates", "notification.request", "task-events.dlq", "task-updates.dlq",
                            "notification.request.dlq"})
    EXPECT_TRUE(addresses.count(topic)) << "no channel with address " << topic;
}

TEST(AsyncApi, EveryRefResolvesAndEverySchemaIsReferenced) {
  const YAML::Node doc = load_document();
  std::vector<Ref> refs;
  collect_refs(doc, "", refs);
  ASSERT_FALSE(refs.empty());

  std::set<fs::path> referenced_files;
  for (const auto& ref : refs) {
    SCOPED_TRACE("$ref '" + ref.value + "' at " + (ref.where.empty() ? std::string("/") : ref.where));
    ASSERT_FALSE(ref.value.empty()) << "a $ref must be a string";
    if (ref.value[0] == '#') {
      EXPECT_TRUE(resolves(doc, pointer_tokens(ref.value.substr(1)), 0)) << "points at nothing in the document";
      continue;
    }
    ASSERT_EQ(ref.value.find("://"), std::string::npos) << "only references within the repository";
    const auto hash = ref.value.find('#');
    const std::string file = ref.value.substr(0, hash);
    const fs::path path = kDocsDir / file;
    ASSERT_TRUE(fs::is_regular_file(path)) << path << " does not exist";
    std::ifstream in(path);
    const auto schema = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(schema.is_discarded()) << path << " is not JSON";
    ASSERT_TRUE(schema.is_object()) << path << " is not a JSON object";
    EXPECT_TRUE(schema.contains("$schema") || schema.contains("type")) << path << " has neither $schema nor type";
    if (hash != std::string::npos && hash + 1 < ref.value.size()) {
      const std::string fragment = ref.value.substr(hash + 1);
      EXPECT_TRUE(!fragment.empty() && fragment[0] == '/' && schema.contains(nlohmann::json::json_pointer(fragment)))
          << "fragment " << fragment << " points at nothing in " << path;
    }
    referenced_files.insert(fs::weakly_canonical(path));
  }

  // schemas/<kind>/v<N>.schema.json (docs/schemas.md): the highest version of every kind is
  // what producers emit, so the document must reference it; older versions may be referenced.
  std::map<std::string, std::pair<int, fs::path>> latest;  // kind -> (N, path)
  for (const auto& entry : fs::recursive_directory_iterator(kSchemaDir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    const fs::path relative = fs::relative(entry.path(), kSchemaDir);
    const int version = std::distance(relative.begin(), relative.end()) == 2 ? version_of(relative.filename().string()) : 0;
    EXPECT_GT(version, 0) << relative << " is not schemas/<kind>/v<N>.schema.json";
    if (version == 0) continue;
    auto& [n, path] = latest[relative.begin()->string()];
    if (version > n) {
      n = version;
      path = entry.path();
    }
  }
  EXPECT_EQ(latest.size(), 3u) << "expected three kinds of schema in " << kSchemaDir;
  for (const auto& [kind, newest] : latest)
    EXPECT_TRUE(referenced_files.count(fs::weakly_canonical(newest.second)))
        << fs::relative(newest.second, kSourceDir) << ", the latest " << kind << " schema, is not referenced by docs/asyncapi.yaml";
}
