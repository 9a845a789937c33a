/** The engine's version, recorded in every session and report (kept equal to package.json's). */
export const ENGINE_VERSION = '0.1.0';
