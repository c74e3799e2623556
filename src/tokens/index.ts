// The token system's public surface (pure: no I/O, no state).
export * from './reasons.js';
export * from './chain.js';
export * from './boot-token.js';
export * from './topup.js';
export * from './certificate.js';
export { vmKey } from './mac.js';
export * from './issue.js';
