#!/usr/bin/env node
// Parses and semantically analyses KQL with Microsoft's Kusto language service (Kusto.Language, as
// compiled to JavaScript in @kusto/language-service-next), against declared tables.
//
// stdin:  {"tables": {"Name": [["Column", "type"], ...]}, "functions": {"Name": "body", ...} (optional; a
//          function with parameters: "Name": {"parameters": "(name:type, ...)", "body": "..."}),
//          "queries": [{"id": "...", "text": "..."}]}
// stdout: {"analyser": "<package>@<version>", "results": [{"id", "diagnostics": [{severity, code, message,
//          start, length}], "columns": [{name, type}]}]}
// One process analyses every query: loading the language service is the slow part (about a second).
"use strict";

const fs = require("fs");
const path = require("path");

const PACKAGE = "@kusto/language-service-next";
const packageDir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
// Bridge.NET output: bridge.js defines the runtime, the second file defines the Kusto globals.
require(path.join(packageDir, "bridge.js"));
require(path.join(packageDir, "Kusto.Language.Bridge.js"));
const Kusto = globalThis.Kusto;
const version = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")).version;

function globalsFor(tables, functions) {
  const symbols = Object.entries(tables).map(([name, columns]) => {
    const schema = "(" + columns.map(([column, type]) => `${column}:${type}`).join(", ") + ")";
    return new Kusto.Language.Symbols.TableSymbol.$ctor7(name, schema, "");
  });
  // Workspace functions, as the saved searches declare them: `Name() { body }` (no parameters), or with the
  // parameters given (what Sentinel defines, `_GetWatchlist(watchlistAlias:string)`).
  for (const [name, declared] of Object.entries(functions || {})) {
    const { parameters, body } = typeof declared === "string" ? { parameters: "()", body: declared } : declared;
    symbols.push(new Kusto.Language.Symbols.FunctionSymbol.$ctor16(name, parameters, `{\n${body}\n}`, ""));
  }
  const database = new Kusto.Language.Symbols.DatabaseSymbol.$ctor2("workspace", null, symbols);
  return Kusto.Language.GlobalState.Default.WithDatabase(database);
}

function listOf(collection) {
  const items = [];
  for (let i = 0; i < collection.Count; i++) items.push(collection.getItem(i));
  return items;
}

function analyse(globals, query) {
  const code = Kusto.Language.KustoCode.ParseAndAnalyze(query.text, globals);
  const diagnostics = listOf(code.GetDiagnostics()).map((d) => ({
    severity: String(d.Severity),
    code: String(d.Code),
    message: String(d.Message),
    start: d.Start,
    length: d.Length,
  }));
  const result = code.ResultType;
  const columns = result && result.Columns ? listOf(result.Columns).map((c) => ({ name: c.Name, type: c.Type.Name })) : [];
  return { id: query.id, diagnostics, columns };
}

function main() {
  const request = JSON.parse(fs.readFileSync(0, "utf8"));
  const globals = globalsFor(request.tables, request.functions);
  const results = request.queries.map((query) => analyse(globals, query));
  process.stdout.write(JSON.stringify({ analyser: `${PACKAGE}@${version}`, results }));
}

main();
