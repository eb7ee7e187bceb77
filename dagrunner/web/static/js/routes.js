// Every page of the UI: a hash path pattern, the header section it belongs to, its title, its renderer.

import { approvalsPage } from "./approvals.js";
import { assetPage, assetsPage } from "./assets.js";
import { auditPage } from "./audit.js";
import { dagPage } from "./dag.js";
import { dagsPage } from "./dags.js";
import { deadLetterPage, deadLettersPage } from "./deadletters.js";
import { loginPage } from "./login.js";
import { poolsPage } from "./pools.js";
import { runPage, runsPage } from "./run.js";
import { taskInstancePage } from "./taskinstance.js";
import { usersPage } from "./users.js";

const SEG = "([^/]+)";

export const routes = [
  { pattern: /^\/login$/, section: null, title: () => "Log in", page: loginPage },
  { pattern: /^\/dags$/, section: "dags", title: () => "DAGs", page: dagsPage },
  { pattern: new RegExp(`^/dags/${SEG}/runs/${SEG}/tasks/${SEG}$`), section: "dags", title: (p) => `${p[2]} · ${p[0]}`, page: taskInstancePage },
  { pattern: new RegExp(`^/dags/${SEG}/runs/${SEG}$`), section: "dags", title: (p) => `${p[1]} · ${p[0]}`, page: runPage },
  { pattern: new RegExp(`^/dags/${SEG}(?:/(grid|graph|runs|details|trigger))?$`), section: "dags", title: (p) => p[0], page: dagPage },
  { pattern: /^\/runs$/, section: "runs", title: () => "Runs", page: runsPage },
  { pattern: /^\/approvals$/, section: "approvals", title: () => "Approvals", page: approvalsPage },
  { pattern: /^\/assets$/, section: "assets", title: () => "Assets", page: assetsPage },
  { pattern: new RegExp(`^/assets/${SEG}$`), section: "assets", title: (p) => p[0], page: assetPage },
  { pattern: /^\/dead-letters$/, section: "dead-letters", title: () => "Dead letters", page: deadLettersPage },
  { pattern: new RegExp(`^/dead-letters/${SEG}$`), section: "dead-letters", title: (p) => `Dead letter ${p[0]}`, page: deadLetterPage },
  { pattern: /^\/pools$/, section: "pools", title: () => "Pools", page: poolsPage },
  { pattern: /^\/audit$/, section: "audit", title: () => "Audit", page: auditPage },
  { pattern: /^\/users$/, section: "users", title: () => "Users", page: usersPage },
];
