import { defineConfig } from "vitest/config";
import preact from "@preact/preset-vite";

// Tauri serves ui/dist from the app bundle; nothing is fetched at run time.
export default defineConfig({
  plugins: [preact()],
  clearScreen: false,
  build: {
    target: "safari15",
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
