import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    {
        ignores: [
            'dist/**',
            'node_modules/**',
            '.node-red/**',
            'bin/**',
            '.stryker-tmp/**',
            'reports/**',
        ],
    },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        files: ['**/*.ts'],
        languageOptions: {
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
        },
        rules: {
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/no-misused-promises': 'error',
            '@typescript-eslint/no-unused-vars': [
                'error',
                { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
            ],
            eqeqeq: ['error', 'always'],
            'no-console': ['error', { allow: ['warn', 'error'] }],
        },
    },
    {
        // The domain core stays free of Node-RED so it can be tested and reused on its own.
        files: ['lib/**/*.ts'],
        rules: {
            'no-restricted-imports': [
                'error',
                {
                    patterns: [
                        {
                            group: ['node-red', '@node-red/*'],
                            message: 'lib/ must not import node-red',
                        },
                        {
                            group: ['**/nodes/**', '../../nodes/*'],
                            message: 'lib/ must not import nodes/',
                        },
                    ],
                },
            ],
        },
    },
    {
        files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.mjs'],
        // Node files use `export =`, which tests load with `import x = require(…)`.
        rules: { 'no-console': 'off', '@typescript-eslint/no-require-imports': 'off' },
    },
    {
        files: ['scripts/**/*.mjs', 'scripts/**/*.cjs', 'bin/**/*.js'],
        rules: { '@typescript-eslint/no-require-imports': 'off' },
        languageOptions: {
            globals: {
                process: 'readonly',
                console: 'readonly',
                setTimeout: 'readonly',
                clearTimeout: 'readonly',
                fetch: 'readonly',
                setInterval: 'readonly',
                clearInterval: 'readonly',
                require: 'readonly',
                module: 'writable',
                __dirname: 'readonly',
            },
        },
    },
);
