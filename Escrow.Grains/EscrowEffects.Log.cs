namespace Escrow.Grains;

public sealed partial class EscrowEffects
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: {Effect} failed for now ({Code}); retried with backoff")]
    private partial void LogTransient(Guid escrowId, string effect, string code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: transfer failed ({Code}, {Kind})")]
    private partial void LogTransferFailed(Guid escrowId, string code, string kind);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: email {Kind} failed: {Error}")]
    private partial void LogEmailFailed(Guid escrowId, string kind, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Escrow {EscrowId}: the email log could not be written")]
    private partial void LogEmailLogFailed(Exception e, Guid escrowId);
}
