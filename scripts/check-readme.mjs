#!/usr/bin/env node
// Type-checks every TypeScript block of README.md and of the pages in docs/ against the built
// package (dist/), so the documentation cannot drift from the code, and checks that every relative
// link of those pages leads to a file that exists and, with a #fragment, to one of its headings.
// `npm run check:readme` builds first; `node scripts/check-readme.mjs` checks against whatever dist/
// holds. `node scripts/check-readme.mjs other.md` checks other files only.
//
// Which blocks: every fenced block whose info string is `ts` or `typescript`, indented ones (in a
// list) included. Every one must compile; there is no skip list. A block that is not TypeScript of
// this package (a shell line, Lua, SQL, a log) is fenced as what it is (`bash`, `lua`, `sql`, `text`).
//
// Files of one app: a block whose first line is a comment naming a file, `// app.module.ts`, is that
// file of the README's app, and such blocks import each other by relative path (`./my.service`).
// The path may have folders (`// billing/app.module.ts`); a path names one block only. A block
// without that line is a module of its own: it imports packages only.
//
// How the package resolves: the blocks go into a temporary project whose node_modules links
// `dpa-distributed-lock-cron` to this repository, so its package.json (`types`, `typesVersions`,
// `exports`) leads to dist/, and every other package to this repository's node_modules. Subpaths
// (`dpa-distributed-lock-cron/core`) resolve as a user's compiler resolves them, from package.json.
// Every block is checked twice, under the two ways a CommonJS Nest app is compiled:
//   commonjs  `module: commonjs` (Node10 resolution: `types` and `typesVersions`), Nest 10's CLI;
//   node16    `module: node16` (resolution through `exports`, CommonJS output), as Nest 11's CLI
//             `nodenext` resolves.
// Both strict, with experimentalDecorators and emitDecoratorMetadata.
//
// Prints the blocks it found, then each error as README.md:<line>:<column> with tsc's message.
// Exits 1 on any error. README_CHECK_KEEP=1 keeps the temporary project and prints its path.
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const DOCS_DIR = join(REPO_DIR, 'docs');
const README = join(REPO_DIR, 'README.md');
/** The pages checked: those named on the command line, else README.md and every page of docs/. */
const PAGES =
  process.argv.length > 2
    ? process.argv.slice(2).map((page) => resolve(page))
    : [
        join(REPO_DIR, 'README.md'),
        ...readdirSync(DOCS_DIR)
          .filter((name) => name.endsWith('.md'))
          .sort()
          .map((name) => join(DOCS_DIR, name)),
      ];
/** The page being checked, and how positions name it (relative to the working directory: `README.md:42:7`). */
let MARKDOWN = PAGES[0];
let SHOWN = '';
const PACKAGE_NAME = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')).name;
const ts = createRequire(join(REPO_DIR, 'package.json'))('typescript');

const CHECKED_LANGUAGES = new Set(['ts', 'typescript']);
/** `// app.module.ts` or `// billing/app.module.ts` on a block's first line. */
const FILE_NAME_LINE = /^\/\/\s*((?:[\w.-]+\/)*[\w.-]+\.ts)\s*$/;

const SHARED_OPTIONS = {
  strict: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts'],
  types: ['node', 'jest'],
  esModuleInterop: true,
  skipLibCheck: true,
  forceConsistentCasingInFileNames: true,
  // A block without imports is still a module of its own, never a script sharing globals.
  moduleDetection: ts.ModuleDetectionKind.Force,
  noEmit: true,
};
const PASSES = [
  {
    name: 'commonjs',
    options: { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 },
  },
  {
    name: 'node16',
    options: { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 },
  },
];

/** A problem with the README or the build rather than a type error; stops the check. */
class CheckError extends Error {}

main();

function main() {
  for (const page of PAGES) {
    MARKDOWN = page;
    SHOWN = page.startsWith(process.cwd() + sep) ? relative(process.cwd(), page) : page;
    try {
      checkLinks();
      check();
    } catch (error) {
      if (!(error instanceof CheckError)) throw error;
      console.error(error.message);
      process.exitCode = 1;
    }
  }
}

/** Every relative link of the page leads to a file that exists, and a #fragment to one of its headings. */
function checkLinks() {
  const markdown = readFileSync(MARKDOWN, 'utf8');
  const broken = [];
  markdown.split(/\r?\n/).forEach((line, index) => {
    for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:)/.test(target)) continue;
      const [path, fragment] = target.split('#');
      const file = path === '' ? MARKDOWN : resolve(dirname(MARKDOWN), path);
      if (!existsSync(file)) broken.push(`${SHOWN}:${index + 1}  ${target}: no such file`);
      else if (fragment && file.endsWith('.md') && !headingAnchors(readFileSync(file, 'utf8')).has(fragment)) {
        broken.push(`${SHOWN}:${index + 1}  ${target}: no such heading`);
      }
    }
  });
  if (broken.length > 0) fail(`Broken links:\n${broken.join('\n')}`);
}

/** The anchors GitHub gives a page's headings (lower case, punctuation dropped, spaces as hyphens, repeats numbered). */
function headingAnchors(markdown) {
  const anchors = new Set();
  const seen = new Map();
  let fenced = false;
  for (const line of markdown.split(/\r?\n/)) {
    if (line.trimStart().startsWith('```')) fenced = !fenced;
    if (fenced || !/^#{1,6} /.test(line)) continue;
    const slug = line
      .replace(/^#+\s*/, '')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

function check() {
  if (!existsSync(join(REPO_DIR, 'dist', 'index.d.ts'))) {
    fail('dist/index.d.ts is missing: run `npm run build` first (or `npm run check:readme`, which builds).');
  }
  const own = extractBlocks(readFileSync(MARKDOWN, 'utf8'));
  if (own.length === 0) {
    console.log(`${SHOWN}: no TypeScript block; its links lead where they say.`);
    return;
  }
  assignFiles(own);
  // A page of docs/ extends the README's app: its files may import the README's (`./my.service`).
  const named = new Set(own.map((block) => block.fileName).filter(Boolean));
  const borrowed = MARKDOWN === README ? [] : readmeAppFiles().filter((block) => !named.has(block.fileName));
  const blocks = [...own, ...borrowed];

  const workDir = mkdtempSync(join(tmpdir(), 'readme-check-'));
  try {
    writeProject(workDir, blocks);
    for (const block of own) {
      const label = block.fileName ? `${block.fileName} (app file)` : 'module of its own';
      console.log(`${SHOWN}:${block.fenceLine}  ${label}`);
    }
    let errors = 0;
    for (const pass of PASSES) errors += checkPass(workDir, blocks, pass);
    if (errors > 0) {
      console.error(`\n${errors} error(s) in the TypeScript blocks of ${SHOWN}.`);
      process.exitCode = 1;
    } else {
      console.log(
        `\nAll ${own.length} TypeScript blocks of ${SHOWN} compile (${PASSES.map((p) => p.name).join(', ')}).`,
      );
    }
  } finally {
    if (process.env.README_CHECK_KEEP) console.log(`Kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * Fenced blocks of the checked languages, with the README line of their fence and of their first
 * line, and their text with the fence's indentation removed (so columns map back by adding it).
 */
function extractBlocks(markdown) {
  const lines = markdown.split(/\r?\n/);
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`{]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end])) end++;
    if (end === lines.length) fail(`${SHOWN}:${i + 1}: the block opened here is never closed.`);
    if (CHECKED_LANGUAGES.has(info.toLowerCase())) {
      const body = lines.slice(i + 1, end).map((line) => stripIndent(line, indent.length));
      blocks.push({ fenceLine: i + 1, firstLine: i + 2, indent: indent.length, text: body.join('\n') + '\n' });
    }
    i = end;
  }
  return blocks;
}

function stripIndent(line, width) {
  let n = 0;
  while (n < width && line[n] === ' ') n++;
  return line.slice(n);
}

/** Names each block's file: its `// name.ts` line, else readme-L<fence line>.ts in a folder of its own. */
/** The README's app files (`// app.module.ts` blocks), which pages of docs/ build on. */
function readmeAppFiles() {
  const blocks = extractBlocks(readFileSync(README, 'utf8'));
  assignFiles(blocks, 'README.md');
  return blocks.filter((block) => block.fileName);
}

function assignFiles(blocks, shown = SHOWN) {
  const seen = new Map();
  for (const block of blocks) {
    const named = FILE_NAME_LINE.exec(block.text.split('\n', 1)[0]);
    if (named) {
      const fileName = named[1];
      if (fileName.split('/').includes('..')) fail(`${shown}:${block.fenceLine}: "${fileName}" leaves the app folder.`);
      if (seen.has(fileName)) {
        fail(`${shown}:${block.fenceLine}: "${fileName}" already names the block at line ${seen.get(fileName)}.`);
      }
      seen.set(fileName, block.fenceLine);
      block.fileName = fileName;
      block.relativePath = join('app', fileName);
    } else {
      block.relativePath = join('modules', `readme-L${block.fenceLine}.ts`);
    }
  }
}

/**
 * The project: src/app/… and src/modules/… hold the blocks; node_modules links every package of
 * this repository's node_modules, and the package itself to this repository.
 */
function writeProject(workDir, blocks) {
  writeFileSync(join(workDir, 'package.json'), JSON.stringify({ name: 'readme-blocks', private: true }) + '\n');
  const nodeModules = join(workDir, 'node_modules');
  mkdirSync(nodeModules);
  const repoModules = join(REPO_DIR, 'node_modules');
  for (const entry of readdirSync(repoModules)) {
    if (entry.startsWith('.') || entry === PACKAGE_NAME) continue;
    symlinkSync(join(repoModules, entry), join(nodeModules, entry), 'dir');
  }
  symlinkSync(REPO_DIR, join(nodeModules, PACKAGE_NAME), 'dir');
  for (const block of blocks) {
    block.path = join(workDir, 'src', block.relativePath);
    mkdirSync(dirname(block.path), { recursive: true });
    writeFileSync(block.path, block.text);
  }
}

/** Type-checks all blocks in one program; prints each error at its README position. Returns the count. */
function checkPass(workDir, blocks, pass) {
  const options = { ...SHARED_OPTIONS, ...pass.options };
  const program = ts.createProgram({ rootNames: blocks.map((block) => block.path), options });

  // The point is to check against what ships: the package must come from dist/, never src/.
  const fromSources = program
    .getSourceFiles()
    .map((file) => resolve(file.fileName))
    .filter((file) => file.startsWith(join(REPO_DIR, 'src') + sep));
  if (fromSources.length > 0) {
    fail(`[${pass.name}] the package resolved to its sources, not dist/: ${relative(REPO_DIR, fromSources[0])}`);
  }

  const byPath = new Map(blocks.map((block) => [resolve(block.path), block]));
  const diagnostics = ts.getPreEmitDiagnostics(program);
  for (const diagnostic of diagnostics) {
    console.error(`[${pass.name}] ${formatDiagnostic(diagnostic, byPath, workDir)}`);
  }
  return diagnostics.length;
}

function formatDiagnostic(diagnostic, byPath, workDir) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n    ');
  const code = `TS${diagnostic.code}`;
  if (!diagnostic.file || diagnostic.start === undefined) return `${code}: ${message}`;
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  const block = byPath.get(resolve(diagnostic.file.fileName));
  if (!block) {
    return `${relative(workDir, diagnostic.file.fileName)}:${line + 1}:${character + 1} ${code}: ${message}`;
  }
  const where = `${SHOWN}:${block.firstLine + line}:${block.indent + character + 1}`;
  const name = block.fileName ? ` (${block.fileName})` : ` (block at line ${block.fenceLine})`;
  return `${where}${name} ${code}: ${message}`;
}

function fail(message) {
  throw new CheckError(message);
}
