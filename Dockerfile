# Builds both hosts; docker-compose.yml picks the entry point per service.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish Escrow.Api/Escrow.Api.csproj -c Release -o /out/api \
 && dotnet publish Escrow.Silo/Escrow.Silo.csproj -c Release -o /out/silo

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /out /app
USER app
