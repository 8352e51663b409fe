/**
 * @module chat-accounts
 * Adapts the account pool to the port the chat use case declares (chat/chat-ports.ts). Composition
 * glue: it lives beside main.ts so that neither chat/ nor accounts/ has to know the other.
 */
import type { Account } from './accounts/account.ts';
import type { AccountPool } from './accounts/account-pool.ts';
import type { AccountDirectory } from './chat/chat-ports.ts';
import { AuthenticationError } from './errors.ts';

export function createChatAccounts(pool: AccountPool): AccountDirectory {
  return {
    async candidates(bearerTokens) {
      if (bearerTokens) return pool.accountsFromBearer(bearerTokens);
      const server = pool.serverAccounts();
      if (server.length === 0) {
        throw new AuthenticationError('No Kimi account: send "Authorization: Bearer <refresh token>" or configure KIMI_TOKENS.', { code: 'invalid_token' });
      }
      return server;
    },
    lease: (options) => {
      const accountId = options.conversation?.accountId ?? options.accountId;
      return pool.lease({
        candidates: (accountId ? options.candidates.filter((account) => account.id === accountId) : options.candidates) as Account[],
        conversationId: options.conversation?.id,
        conversationAccountId: options.conversation?.accountId,
        exclude: options.exclude,
        signal: options.signal,
      });
    },
    getConversation: (conversationId) => pool.getConversation(conversationId),
    recordConversation: (conversationId, record, deleteAtMs) =>
      pool.bindConversation(conversationId, record.accountId, {
        parentMessageId: record.parentMessageId,
        createdByGateway: record.createdByGateway,
        deleteAt: deleteAtMs,
        isParentUnconfirmed: record.isParentUnconfirmed,
      }),
    postponeDeletion: (conversationId, accountId, atMs) => pool.postponeDeletion(conversationId, accountId, atMs),
    cancelDeletion: (conversationId, record) => pool.cancelDeletion(conversationId, record),
  };
}

