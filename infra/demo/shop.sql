-- The MariaDB demo source (connectors/regulations/shop.yaml): a shop's customer register and
-- orders. Applied by `qoima up` as the data owner's administrator; idempotent.
CREATE TABLE IF NOT EXISTS customers (
    id          bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    iin         char(12)        NOT NULL,
    full_name   varchar(200)    NOT NULL,
    birth_date  date            NOT NULL,
    tier        enum('basic','gold','platinum') NOT NULL DEFAULT 'basic',
    active      tinyint(1)      NOT NULL DEFAULT 1,
    balance     decimal(14,2)   NOT NULL DEFAULT 0,
    updated_at  datetime(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS orders (
    order_id     bigint          NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_iin char(12)        NOT NULL,
    amount       decimal(14,2)   NOT NULL,
    quantity     int unsigned    NOT NULL,
    placed_at    timestamp(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    note         text
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A few rows for the initial snapshot; made-up IINs with valid check digits.
INSERT IGNORE INTO customers (id, iin, full_name, birth_date, tier, active, balance, updated_at) VALUES
    (1, '850101300124', 'Асель Нурланова', '1985-01-01', 'gold', 1, 1250.50, '2026-01-10 09:00:00.000001'),
    (2, '900215400122', 'Ерлан Сапаров', '1990-02-15', 'basic', 1, 0.00, '2026-01-11 10:30:00'),
    (3, '751231500126', 'Мария Ким', '1975-12-31', 'platinum', 0, 99999.99, '2026-01-12 23:59:59.999999');
INSERT IGNORE INTO orders (order_id, customer_iin, amount, quantity, placed_at, note) VALUES
    (1, '850101300124', 149.90, 2, '2026-01-10 09:05:00.123', 'доставка до двери'),
    (2, '900215400122', 12.00, 1, '2026-01-11 10:31:00', NULL);
