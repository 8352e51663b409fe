# kimi-free-api image: Node 24 runs the TypeScript sources directly (type stripping), so there is no
# build stage, only a dependency stage that installs production packages and a small runtime stage.

# ---- deps: production dependencies only, exactly as locked -----------------------------------------
FROM node:24-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency needs an install script (only the dev-only `node` pin has
# one), and skipping them keeps the install reproducible.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ---------------------------------------------------------------------------------------
FROM node:24-alpine AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    STATE_FILE=/data/state.json
WORKDIR /app

# /data holds the state file (rotated tokens, cooldowns) and its chat journal; it belongs to the
# unprivileged `node` user (uid 1000) that ships with the official image.
RUN mkdir -p /data && chown node:node /data

COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node simulator ./simulator

USER node
VOLUME ["/data"]
EXPOSE 8000

# Node's own fetch: no curl or wget needed. /ping answers without touching Kimi.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/ping').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The same command as `npm start`; node is PID 1 and handles SIGTERM itself (graceful shutdown).
CMD ["node", "src/cli.ts", "serve"]
