// ESLint (typescript-eslint) over the TypeScript sources; Prettier owns the layout (.prettierrc.json).
// `npm run lint` runs both; the README's test command runs it first.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'out/',
      'reports/',
      '.stryker-tmp/',
      'test-results/',
      'media/',
      '**/*.js',
      '**/*.cjs',
      '**/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // Optional packages (sharp, tfjs-node, h5py-free readers in tests) load lazily, where they are used.
      '@typescript-eslint/no-require-imports': 'off',
      // `let ok = false; try { ok = await … }` reads plainly; the rule objects to the initial value.
      'no-useless-assignment': 'off',
    },
  },
  {
    // Tests build crafted, partly wrong JSON on purpose.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
