// Sizes as people read them in roam's messages.
export const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;
