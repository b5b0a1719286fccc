namespace Escrow.Grains;

public sealed partial class RecipientGrain
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Recipient {RecipientId}: an audit row could not reach the audit log yet; the reminder retries")]
    private partial void LogAuditDeferred(Exception e, string recipientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recipient {RecipientId}: the daily payout-setup poll could not read the account; next period")]
    private partial void LogPollFailed(Exception e, string recipientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recipient {RecipientId}: an update for account {AccountId}, which is not theirs, was ignored")]
    private partial void LogForeignAccount(string recipientId, string accountId);
}
