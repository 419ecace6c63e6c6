// The "Candidate vs active" card: the shadow run's report (scoring's API).
"use strict";

async function loadShadow() {}
