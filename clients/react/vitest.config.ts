import { defineConfig } from 'vitest/config';

export default defineConfig({
  // One React, also for the runbook's hook (tests/runbook-react) imported as a control.
  resolve: { dedupe: ['react', 'react-dom'] },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.{ts,tsx}'],
  },
});
