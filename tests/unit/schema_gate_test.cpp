// scripts/schema-gate (docs/schemas.md), run with TASKSTREAM_PYTHON (scripts/test points it at its
// venv, which has the gate's libraries): the repository's schemas pass and are all published; the
// fixture trees under tests/schemas/ (copies of a v1 and a made-up v2) pass, or fail naming the
// schema file, the field and the rule they break; a broken tree is a usage error (exit 2). No
// network: the gate only reads files. Fails, never skips, when TASKSTREAM_PYTHON is unset or lacks
// the libraries.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kSourceDir{TASKSTREAM_SOURCE_DIR};

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Result {
  int status = -1;
  std::string output;  ///< stdout and stderr
};

Result run_shell(const std::string& cmd) {
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int raw = pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

/// Empty when TASKSTREAM_PYTHON names a python with the gate's libraries; otherwise why not.
std::string python_problem() {
  static const std::string problem = [] {
    const char* python = std::getenv("TASKSTREAM_PYTHON");
    if (!python || !*python)
      return std::string("TASKSTREAM_PYTHON is not set: it names a python with hypothesis, hypothesis-jsonschema and "
                         "jsonschema (run scripts/test, which installs them)");
    const auto r = run_shell(quoted(python) + " -c 'import hypothesis, hypothesis_jsonschema, jsonschema' 2>&1");
    if (r.status != 0)
      return "TASKSTREAM_PYTHON=" + std::string(python) +
             " lacks the gate's libraries (run scripts/test, which installs them):\n" + r.output;
    return std::string();
  }();
  return problem;
}

/// scripts/schema-gate ARGS with TASKSTREAM_PYTHON; SCHEMA_GATE_REEXEC=1 keeps the gate from
/// falling back to another python.
Result gate(const std::string& args) {
  return run_shell("SCHEMA_GATE_REEXEC=1 " + quoted(std::getenv("TASKSTREAM_PYTHON")) + " " +
                   quoted((kSourceDir / "scripts" / "schema-gate").string()) + " " + args + " 2>&1");
}

std::string fixture(const std::string& name) { return quoted((kSourceDir / "tests" / "schemas" / name).string()); }

/// The output lines holding every one of `parts`.
std::vector<std::string> lines_with(const std::string& output, const std::vector<std::string>& parts) {
  std::vector<std::string> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& part : parts) all = all && line.find(part) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

/// A directory of its own under the temporary directory, removed at the end of the test.
class TempTree {
 public:
  TempTree() {
    std::string pattern = (fs::temp_directory_path() / "schema-gate-test.XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempTree() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  const fs::path& path() const { return path_; }
  void write(const std::string& relative, const std::string& text) const {
    fs::create_directories((path_ / relative).parent_path());
    std::ofstream(path_ / relative) << text;
  }

 private:
  fs::path path_;
};

std::string read(const fs::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(SchemaGate, RepositorySchemasAreCompatibleAndPublished) {
  ASSERT_EQ(python_problem(), "");
  const auto r = gate("");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("schema-gate: OK"), std::string::npos) << r.output;
  // Every version in schemas/ is listed in schemas/PUBLISHED (scripts/schema-gate --publish).
  EXPECT_EQ(r.output.find("not published yet"), std::string::npos) << r.output;
}

TEST(SchemaGate, ExtraOptionalFieldAndOpenEnumValueAreCompatible) {
  ASSERT_EQ(python_problem(), "");
  // v2 adds an optional field (locale) and a channel (push) to the x-open-enum channels[];
  // the default number of generated events, both ways.
  const auto r = gate("--dir " + fixture("compatible"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(lines_with(r.output, {"notification-request: v1 -> v2", "compatible"}).size(), 1u) << r.output;
}

struct Breaking {
  const char* fixture;  ///< tests/schemas/<fixture>
  const char* file;     ///< the schema file the line names
  const char* field;    ///< "field '...'"; empty for the published check
  const char* rule;
};

void PrintTo(const Breaking& c, std::ostream* os) { *os << "tests/schemas/" << c.fixture; }

class SchemaGateBreaking : public testing::TestWithParam<Breaking> {};

TEST_P(SchemaGateBreaking, FailsNamingTheFileTheFieldAndTheRule) {
  ASSERT_EQ(python_problem(), "");
  const auto& c = GetParam();
  const auto r = gate("--dir " + fixture(c.fixture));
  EXPECT_EQ(r.status, 1) << r.output;
  std::vector<std::string> parts{c.file, c.rule};
  if (*c.field) parts.push_back(c.field);
  EXPECT_EQ(lines_with(r.output, parts).size(), 1u) << "no line with '" << c.file << "', '" << c.field << "' and '"
                                                     << c.rule << "' in:\n" << r.output;
  EXPECT_NE(r.output.find("schema-gate: FAILED"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    SchemaGate, SchemaGateBreaking,
    testing::Values(
        Breaking{"new-required-field", "schemas/notification-request/v2.schema.json", "field 'locale'",
                 "new required field (forward)"},
        Breaking{"narrowed-type", "schemas/notification-request/v2.schema.json", "field 'task_id'",
                 "type narrowed (forward): v1 events may hold null"},
        Breaking{"narrowed-enum", "schemas/notification-request/v2.schema.json", "field 'channels[]'",
                 "enum narrowed (forward): v1 events may carry 'sms'"},
        Breaking{"closed-enum-widened", "schemas/task-update/v2.schema.json", "field 'type'",
                 "closed enum widened (backward): old consumers dead-letter 'task_archived'"},
        Breaking{"removed-required-field", "schemas/notification-request/v2.schema.json", "field 'title'",
                 "removed field a consumer reads (backward)"},
        // Found by sampling only: no rule looks at minLength.
        Breaking{"tightened-length", "schemas/notification-request/v2.schema.json", "field 'user_id'",
                 "sampling (forward): a v1 event that v2 consumers reject (minLength)"},
        Breaking{"published-v1-edited", "schemas/notification-request/v1.schema.json", "",
                 "is published and changed: add v2 instead"}),
    [](const testing::TestParamInfo<Breaking>& info) {
      std::string name = info.param.fixture;
      for (auto& c : name)
        if (c == '-') c = '_';
      return name;
    });

TEST(SchemaGate, BrokenFilesAndBadArgumentsAreUsageErrors) {
  ASSERT_EQ(python_problem(), "");
  const std::string header = R"("$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://taskstream.example/schemas/x/v1.schema.json")";
  {
    TempTree tree;
    tree.write("schemas/x/v1.schema.json", "{" + header + ",");
    const auto r = gate("--dir " + quoted(tree.path().string()));
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_EQ(lines_with(r.output, {"schemas/x/v1.schema.json", "not JSON"}).size(), 1u) << r.output;
  }
  {
    TempTree tree;
    tree.write("schemas/x/v1.schema.json", "{" + header + R"(, "properties": {"a": {"type": 5}}})");
    const auto r = gate("--dir " + quoted(tree.path().string()));
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_EQ(lines_with(r.output, {"schemas/x/v1.schema.json", "not a valid draft-7 schema"}).size(), 1u) << r.output;
  }
  {
    TempTree tree;
    tree.write("schemas/x/v1.schema.json", R"({"$schema": "http://json-schema.org/draft-04/schema#"})");
    const auto r = gate("--dir " + quoted(tree.path().string()));
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_EQ(lines_with(r.output, {"schemas/x/v1.schema.json", "not a draft-7 schema"}).size(), 1u) << r.output;
  }
  {
    TempTree tree;
    const auto r = gate("--dir " + quoted((tree.path() / "nowhere").string()));
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("no such directory"), std::string::npos) << r.output;
  }
  const auto r = gate("--no-such-option");
  EXPECT_EQ(r.status, 2) << r.output;
}

TEST(SchemaGate, PublishListsNewVersionsWhichThenStayAsTheyAre) {
  ASSERT_EQ(python_problem(), "");
  TempTree tree;
  fs::copy(kSourceDir / "tests" / "schemas" / "compatible", tree.path(), fs::copy_options::recursive);
  const auto dir = quoted(tree.path().string());
  const auto published = gate("--examples 50 --publish --dir " + dir);
  EXPECT_EQ(published.status, 0) << published.output;
  EXPECT_EQ(lines_with(published.output, {"published schemas/notification-request/v2.schema.json"}).size(), 1u)
      << published.output;
  const auto lock = read(tree.path() / "schemas" / "PUBLISHED");
  EXPECT_EQ(lines_with(lock, {"  schemas/notification-request/v1.schema.json"}).size(), 1u) << lock;
  EXPECT_EQ(lines_with(lock, {"  schemas/notification-request/v2.schema.json"}).size(), 1u) << lock;

  tree.write("schemas/notification-request/v2.schema.json",
             read(tree.path() / "schemas/notification-request/v2.schema.json") + "\n");
  const auto edited = gate("--examples 50 --dir " + dir);
  EXPECT_EQ(edited.status, 1) << edited.output;
  EXPECT_EQ(lines_with(edited.output, {"schemas/notification-request/v2.schema.json is published and changed: add v3 instead"}).size(), 1u)
      << edited.output;

  fs::remove(tree.path() / "schemas/notification-request/v2.schema.json");
  const auto removed = gate("--dir " + dir);
  EXPECT_EQ(removed.status, 1) << removed.output;
  EXPECT_EQ(lines_with(removed.output, {"schemas/notification-request/v2.schema.json is published and missing"}).size(), 1u)
      << removed.output;
}

TEST(SchemaGate, RelaxingDropsClosedObjectsAndOpensMarkedEnums) {
  ASSERT_EQ(python_problem(), "");
  TempTree tree;
  tree.write("small.schema.json", R"({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": false,
    "properties": {
      "kind": {"type": "string", "enum": ["a", "b"]},
      "level": {"type": "string", "enum": ["low", "high"], "x-open-enum": true},
      "tags": {"type": "array", "items": {"enum": [1, 2], "x-open-enum": true}},
      "inner": {"type": "object", "additionalProperties": false, "properties": {"n": {"type": "integer"}}}
    }
  })");
  const auto r = gate("--relax " + quoted((tree.path() / "small.schema.json").string()));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto relaxed = json::parse(r.output, nullptr, false);
  ASSERT_FALSE(relaxed.is_discarded()) << r.output;
  EXPECT_FALSE(relaxed.contains("additionalProperties")) << r.output;
  const auto& p = relaxed.at("properties");
  EXPECT_EQ(p.at("kind"), (json{{"type", "string"}, {"enum", {"a", "b"}}})) << "a closed enum stays";
  EXPECT_EQ(p.at("level"), (json{{"type", "string"}, {"x-open-enum", true}})) << "an open enum becomes its type";
  EXPECT_EQ(p.at("tags").at("items"), (json{{"type", "integer"}, {"x-open-enum", true}}))
      << "without a type, the enum values' type";
  EXPECT_FALSE(p.at("inner").contains("additionalProperties")) << r.output;
  EXPECT_EQ(p.at("inner").at("properties").at("n"), (json{{"type", "integer"}}));
}
