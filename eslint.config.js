// eslint (flat config), run by `make lint`: the TiDB PITR page's bundle and helpers (browser ES modules over the
// host's React) and their node tests. Types are tsc's job (tsconfig*.json); this catches the rest.
import js from "@eslint/js";

const browser = { document: "readonly", fetch: "readonly", console: "readonly", URL: "readonly",
  setTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly" };

export default [
  { ignores: ["node_modules/**", ".venv/**", ".artifacts/**", ".sandbox/**", ".demo/**"] },
  js.configs.recommended,
  {
    files: ["plugins/tidb_pitr/ui/*.js", "tests/**/*.mjs", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: browser },
    rules: {
      eqeqeq: "error",
      "no-var": "error",
      "prefer-const": "error",
      "no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_" }],
    },
  },
];
