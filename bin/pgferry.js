#!/usr/bin/env node
// The CLI is one bundled file in dist/ (built by `npm ci` through the prepare script).
import '../dist/pgferry.mjs';
