// The calibration card: acceptance by rule, campaign, channel, grade and version.
"use strict";

async function loadCalibration() {}
