namespace Escrow.Grains;

public sealed partial class EscrowGrain
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Escrow {EscrowId} created for recipient {RecipientId}: {AmountMinor} {Currency}")]
    private partial void LogCreated(Guid escrowId, string recipientId, long amountMinor, string currency);

    [LoggerMessage(Level = LogLevel.Information, Message = "Escrow {EscrowId}: {From} -> {To}")]
    private partial void LogStatus(Guid escrowId, string from, string to);

    [LoggerMessage(Level = LogLevel.Information, Message = "Escrow {EscrowId} refused {Command}: {Rejection}")]
    private partial void LogRejected(Guid escrowId, string command, string rejection);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: {Command} is durable, but the work after it failed for now; the reminder re-drives it")]
    private partial void LogFailedAfterDecision(Exception e, Guid escrowId, string command);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: the reminder could not be moved to the next due time; the one ensured before the write stands")]
    private partial void LogScheduleFailed(Exception e, Guid escrowId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: the ledger and projection could not be written; retried on the next write or tick")]
    private partial void LogSyncFailed(Exception e, Guid escrowId);
}
