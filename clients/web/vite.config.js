import { defineConfig } from "vite";

// Served at /app/ by the API (make run) and by nginx (production); the page's CSP allows
// nothing inline and nothing from another host, so no inline scripts or styles here either.
export default defineConfig({
  base: "/app/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` against `make run`'s API.
    proxy: { "/v1": "http://127.0.0.1:8000" },
  },
});
