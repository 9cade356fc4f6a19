// analytics-service of the ai-saas platform (the sandbox's pods are simulated by kwok).
module.exports = { name: 'analytics-service' };
