# ai-server, one replica per container (docker-compose.yml runs two behind nginx with PostgreSQL and Redis).
#
#   docker build -t ai-server .                                   # CPU
#   docker build -t ai-server:cuda --build-arg CUDA=1 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04 .   # NVIDIA GPUs (run with --gpus all)
#
# CUDA=1 builds llama-server against node-llama-cpp's prebuilt CUDA libraries (AI_SERVER_LLAMA_SERVER_VARIANT
# linux-x64-cuda: the same ggml the in-process engine runs), which need the CUDA 13 runtime libraries (libcudart,
# libcublas) of an nvidia/cuda runtime image at run time. For a CUDA build of your own from source instead, set
# BUILD_IMAGE to an nvidia/cuda devel image and LLAMA_SERVER_METHOD=cmake with
# LLAMA_SERVER_CMAKE_FLAGS=-DGGML_CUDA=ON (scripts/build-llama-server.mjs; AI_SERVER_ENGINE=llama-server then, since
# the automatic choice cannot tell a cmake build's backend).
#
# The server listens on 0.0.0.0:11434, so it refuses to start without an API key: set AI_SERVER_ADMIN_KEY (32
# characters or more) or create a key in the volume. Data (models, and the database unless AI_SERVER_DATABASE_URL
# names a PostgreSQL) lives in the /data volume.

ARG BUILD_IMAGE=node:20-bookworm
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM node:20-bookworm-slim AS node

FROM ${BUILD_IMAGE} AS build
ARG CUDA=0
ARG LLAMA_SERVER_METHOD=prebuilt
ARG LLAMA_SERVER_CMAKE_FLAGS=
# Node.js for build images that lack it (an nvidia/cuda devel image); a node image is left as it is.
COPY --from=node /usr/local/ /usr/local/
# git and g++ build llama-server (node images have them); cmake only for LLAMA_SERVER_METHOD=cmake.
RUN if [ "$LLAMA_SERVER_METHOD" = cmake ] || ! command -v g++ >/dev/null || ! command -v git >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends git g++ make cmake python3 ca-certificates && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
COPY . .
# Dependencies, the TypeScript build and the dashboard (npm's prepare script); llama-server is built next, where a
# failure fails the image instead of leaving it to the in-process engine.
RUN AI_SERVER_SKIP_LLAMA_SERVER_BUILD=1 npm ci
RUN AI_SERVER_LLAMA_SERVER_DIR=/opt/llama-server AI_SERVER_BUILD_NICE=0 \
    AI_SERVER_LLAMA_SERVER_VARIANT=$([ "$CUDA" = 1 ] && echo linux-x64-cuda || echo linux-x64) \
    AI_SERVER_LLAMA_SERVER_CMAKE_FLAGS="$LLAMA_SERVER_CMAKE_FLAGS" \
    node scripts/build-llama-server.mjs --method="$LLAMA_SERVER_METHOD"
RUN npm prune --omit=dev

FROM ${RUNTIME_IMAGE}
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/scripts ./scripts
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /opt/llama-server /opt/llama-server
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home ai-server && mkdir -p /data && chown ai-server:ai-server /data
USER ai-server
ENV NODE_ENV=production \
    HOME=/data \
    AI_SERVER_HOME=/data \
    AI_SERVER_HOST=0.0.0.0:11434 \
    AI_SERVER_LLAMA_SERVER=/opt/llama-server/llama-server
VOLUME /data
EXPOSE 11434
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
    CMD ["node", "-e", "fetch('http://127.0.0.1:11434/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/ai-server.js"]
CMD ["serve"]
